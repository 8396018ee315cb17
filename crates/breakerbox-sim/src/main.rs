//! `breakerbox-sim`: see `--help` and the crate's README.

fn main() {
    match breakerbox_sim::run_cli(std::env::args().skip(1)) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("error: {e}\n\nsee `breakerbox-sim --help`");
            std::process::exit(2);
        }
    }
}

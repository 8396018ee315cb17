//! The command line, parsed by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use breakerbox::config::BreakerConfig;

use crate::SimError;
use crate::replay::{Contender, replay};
use crate::report::{Format, render};
use crate::scenario::{Kind, Scenario, parse_seconds};

/// `breakerbox-sim --help`.
pub const USAGE: &str = "\
breakerbox-sim: replay a named scenario through breaker configs in virtual time

usage: breakerbox-sim --scenario NAME [--config FILE.toml]... [--no-breaker]
                      [--seconds N] [--seed S] [--format text|json|csv] [--PARAM VALUE]...

  --scenario NAME   outage, brownout, slow, flapping, noise or hung-probe (default outage)
  --config FILE     a breaker's settings in TOML (breakerbox::config::BreakerConfig);
                    repeat to compare; none: the core's default breaker
  --no-breaker      add a row with no breaker at all
  --seconds N       virtual seconds to replay (default 60)
  --seed S          the seed of the scenario's randomness (default 1)
  --format F        text (default), json or csv
  --PARAM VALUE     a scenario parameter, for example --duration 30s (list below)
  -h, --help        this text

Durations are written 10s, 250ms or as bare seconds.";

/// Parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Cli {
    /// The scenario, with its parameters set.
    pub scenario: Scenario,
    /// The config files, in order.
    pub configs: Vec<PathBuf>,
    /// Whether to add a row without a breaker.
    pub no_breaker: bool,
    /// Virtual time to replay.
    pub seconds: Duration,
    /// The seed.
    pub seed: u64,
    /// The output format.
    pub format: Format,
}

/// The usage text with every scenario and its parameters.
fn help() -> String {
    let mut out = format!("{USAGE}\n\nscenarios and their parameters (defaults):\n");
    for kind in Kind::ALL {
        out.push_str(&format!("\n  {}: {}\n", kind.name(), kind.about()));
        for p in Scenario::new(kind).params() {
            out.push_str(&format!("    --{:<14} {:<8} {}\n", p.name, p.display(), p.doc));
        }
    }
    out
}

/// Parses the arguments (without the program's name); `Ok(None)` for `--help`.
///
/// # Errors
///
/// [`SimError`] naming the flag, for an unknown flag, a missing or bad value.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, SimError> {
    let mut raw = args.into_iter();
    let mut scenario = "outage".to_owned();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut cli = Cli {
        scenario: Scenario::new(Kind::Outage),
        configs: Vec::new(),
        no_breaker: false,
        seconds: Duration::from_secs(60),
        seed: 1,
        format: Format::Text,
    };
    while let Some(arg) = raw.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--no-breaker" => {
                cli.no_breaker = true;
                continue;
            }
            _ => {}
        }
        let Some(name) = flag.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(SimError(format!("unexpected argument `{flag}` (flags start with --; see --help)")));
        };
        let value = inline.or_else(|| raw.next()).ok_or_else(|| SimError(format!("{flag} needs a value")))?;
        match name {
            "scenario" => scenario = value,
            "config" => cli.configs.push(PathBuf::from(value)),
            "seconds" => {
                cli.seconds = parse_seconds(&value)
                    .filter(|s| *s > 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| SimError(format!("--seconds: `{value}` is not a duration from 0 to 1 day")))?;
            }
            "seed" => {
                cli.seed = value.parse().map_err(|_| SimError(format!("--seed: `{value}` is not a whole number")))?;
            }
            "format" => cli.format = Format::parse(&value)?,
            other => params.push((other.to_owned(), value)),
        }
    }
    cli.scenario = Scenario::named(&scenario)?;
    for (name, value) in params {
        cli.scenario.set(&name, &value)?;
    }
    // A million calls replay in well under a second; more is a typo.
    let load = cli.scenario.load();
    if load.rate.max(load.ramp_to.unwrap_or(0.0)) * cli.seconds.as_secs_f64() > 5e6 {
        return Err(SimError("--rate, --ramp-to and --seconds: more than 5 million calls; lower one".into()));
    }
    Ok(Some(cli))
}

/// Reads a breaker config from a TOML file and checks that it builds; the contender is
/// named by the config's `name`, or the file's stem.
///
/// # Errors
///
/// [`SimError`] naming the file, and the key where the config says which.
pub fn load_config(path: &Path) -> Result<Contender, SimError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| SimError(format!("--config {shown}: {e}")))?;
    let config: BreakerConfig =
        toml::from_str(&text).map_err(|e| SimError(format!("--config {shown}: {}", e.to_string().trim_end())))?;
    config.build().map_err(|e| SimError(format!("--config {shown}: {e}")))?;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| path.file_stem().map_or_else(|| shown.to_string(), |s| s.to_string_lossy().into_owned()));
    Ok(Contender::breaker(name, config))
}

/// The whole program: the text to print, or an error for stderr (exit status 2).
///
/// # Errors
///
/// [`SimError`] for bad arguments and bad configs.
pub fn run_cli(args: impl IntoIterator<Item = String>) -> Result<String, SimError> {
    let Some(cli) = parse_args(args)? else { return Ok(help()) };
    let mut contenders = Vec::new();
    if cli.no_breaker {
        contenders.push(Contender::none());
    }
    if cli.configs.is_empty() {
        contenders.push(Contender::default_breaker());
    }
    for path in &cli.configs {
        contenders.push(load_config(path)?);
    }
    let results =
        contenders.iter().map(|c| replay(&cli.scenario, c, cli.seconds, cli.seed)).collect::<Result<Vec<_>, _>>()?;
    Ok(render(cli.format, &cli.scenario, cli.seconds, cli.seed, &results))
}

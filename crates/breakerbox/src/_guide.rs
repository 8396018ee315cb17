//! A guide to breakerbox (documentation only).

//! The report crate's tests: fixture sweeps written through the real store API
//! ([`fixtures`]), the written report checked on its recommendation ([`report`]), and the
//! charts checked as PNG and SVG files ([`charts`]).

pub(crate) mod fixtures;

mod charts;
mod report;

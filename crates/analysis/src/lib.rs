//! thaw-analysis: what thaw concludes from stored results, read alike by the adaptive search
//! (which decides what runs next) and the report (which says what was found).
//!
//! [`cells`] groups jobs into cells and picks each cell's learning rate on validation,
//! [`stats`] holds the intervals of means and differences ([`bootstrap`] those resampled over
//! one seed's examples), [`baseline`] the majority-class
//! rule a cell must clear, [`setup`] the sweep as planned (what the planner records once and
//! every reader shows), [`labels`] the names cells and series go by.

pub mod advice;
pub mod baseline;
pub mod bootstrap;
pub mod cells;
pub mod costs;
pub mod labels;
pub mod lr_choice;
pub mod setup;
pub mod split;
pub mod stats;
pub mod testing;

pub use baseline::{Baselines, MajorityBaseline};
pub use cells::{Cell, CellKey, CellSummary, SeriesKey};
pub use setup::Setup;
pub use split::Split;

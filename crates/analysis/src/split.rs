//! Which split a number comes from: test (what the report shows by default) or validation
//! (what every choice is made on).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thaw_store::JobResultRow;

/// Which split's metric is displayed. The lr is always picked on validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Test,
    Validation,
}

impl Split {
    /// The sweep's metric.
    pub fn metric(self, row: &JobResultRow) -> Option<f64> {
        match self {
            Split::Test => row.test_metric,
            Split::Validation => row.val_metric,
        }
    }

    pub fn macro_f1(self, row: &JobResultRow) -> Option<f64> {
        match self {
            Split::Test => row.test_macro_f1,
            Split::Validation => row.val_macro_f1,
        }
    }

    /// Which examples of the split a job predicted right, as stored.
    pub fn correct(self, row: &JobResultRow) -> Option<&str> {
        match self {
            Split::Test => row.test_correct.as_deref(),
            Split::Validation => row.val_correct.as_deref(),
        }
    }

    /// What each example contributed to the metric, as stored (JSON).
    pub fn per_example(self, row: &JobResultRow) -> Option<&str> {
        match self {
            Split::Test => row.test_per_example.as_deref(),
            Split::Validation => row.val_per_example.as_deref(),
        }
    }

    /// "test" or "validation".
    pub fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Validation => "validation",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "test" => Ok(Split::Test),
            "validation" | "val" => Ok(Split::Validation),
            other => Err(format!("unknown split '{other}': use test or validation")),
        }
    }
}

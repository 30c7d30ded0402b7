//! The formats of `runner run -o`, each one implementation of [`Output`].

use super::csv::Csv;
use super::json::JsonLines;
use super::model::Output;
use super::none::Silent;
use super::table::Table;

/// Output formats of `runner run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    // Nothing: for a run that only serves `--metrics`.
    None,
}

impl Format {
    pub(crate) fn output(self) -> Box<dyn Output> {
        match self {
            Format::Table => Box::new(Table),
            Format::Json => Box::new(JsonLines),
            Format::Csv => Box::new(Csv::default()),
            Format::None => Box::new(Silent),
        }
    }
}

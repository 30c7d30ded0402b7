//! `-o none`: nothing printed, for a run that only serves metrics (`--metrics`) or only
//! counts (the summary on stderr still says how many events came and were lost).

use super::clock::Stamp;
use super::model::{Events, Histograms, MapTable, Output};

pub(super) struct Silent;

impl Output for Silent {
    fn header(&self, _: &Events, _: &mut Vec<u8>) {}
    fn event(&mut self, _: &Events, _: &Stamp, _: &[u8], _: &mut Vec<u8>) {}
    fn map_table(&self, _: &MapTable, _: &mut Vec<u8>) {}
    fn histograms(&self, _: &Histograms, _: &mut Vec<u8>) {}
}

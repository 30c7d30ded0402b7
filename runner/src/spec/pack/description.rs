//! What the packer derives from an object (and its declarations): the description a
//! package holds, and the features a runner needs to run it.

use crate::spec::package::{Event, Feature, Global, Group, Map, Program, Switch};

/// What the object itself says about its globals, events, maps and programs. The runner
/// recomputes this from the embedded object to check a package before trusting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub license: String,
    pub globals: Vec<Global>,
    pub events: Vec<Event>,
    pub maps: Vec<Map>,
    pub programs: Vec<Program>,
    pub switches: Vec<Switch>,
    pub groups: Vec<Group>,
}

impl Description {
    /// The features a runner needs to run what this describes (`Package::requires`).
    pub fn requires(&self) -> Vec<String> {
        let uses = [
            (Feature::Switches, !self.switches.is_empty()),
            (Feature::Alternatives, !self.groups.is_empty()),
            (
                Feature::OptionalPrograms,
                self.programs.iter().any(|p| p.optional),
            ),
            (
                Feature::PackageDefaults,
                self.globals.iter().any(|g| g.compiled.is_some()),
            ),
            (
                Feature::ImpliedValues,
                self.globals.iter().any(|g| !g.implies.is_empty()),
            ),
            (
                Feature::MapSizes,
                self.maps.iter().any(|m| m.size.is_some()),
            ),
            (
                Feature::AttachTargets,
                self.programs.iter().any(|p| !p.targets.is_empty()),
            ),
            (
                Feature::WakeupFlag,
                self.events.iter().any(|e| e.wakeup.is_some()),
            ),
        ];
        uses.iter()
            .filter(|(_, used)| *used)
            .map(|(f, _)| f.name().to_string())
            .collect()
    }
}

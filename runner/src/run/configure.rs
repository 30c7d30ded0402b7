//! Phase 2 of `runner run`: the object opened from memory, the values of the flags written
//! into its data sections, the maps sized, and each program marked to load or not, per the
//! invocation.

use anyhow::Context as _;
use libbpf_rs::{ObjectBuilder, OpenObject};

use super::error::RunError;
use super::invocation::Invocation;
use super::kernel_btf::Subset;
use crate::kernel;
use crate::spec::verify::Verified;
use crate::spec::vocab::DataSection;

/// Opened, globals written, programs enabled or not: ready to load.
pub(crate) struct Configured {
    package: Verified,
    run: Invocation,
    open: OpenObject,
}

impl Configured {
    /// `subset`: the kernel BTF subset CO-RE relocations read, if one is cached; it
    /// must stay open until the object is loaded.
    pub fn new(
        package: Verified,
        run: Invocation,
        subset: Option<&Subset>,
    ) -> anyhow::Result<Configured> {
        let pkg = package.package();
        let open_err = |e: libbpf_rs::Error| RunError::Open {
            name: pkg.name.clone(),
            detail: kernel::last_libbpf_message().unwrap_or_else(|| e.to_string()),
        };
        let mut builder = ObjectBuilder::default();
        // Named, or libbpf would name the maps after the buffer's address.
        builder.name(&pkg.name).map_err(open_err)?;
        if let Some(subset) = subset {
            builder.btf_custom_path(subset.path()).map_err(open_err)?;
        }
        let mut open = builder.open_memory(package.object()).map_err(open_err)?;
        for (index, bytes) in &run.values {
            let global = &pkg.globals[*index];
            let mut map = open
                .maps_mut()
                .find(|m| DataSection::names_map(&global.section, &m.name().to_string_lossy()))
                .with_context(|| {
                    format!(
                        "object has no {} map for global `{}`",
                        global.section, global.name
                    )
                })?;
            let data = map.initial_value_mut().with_context(|| {
                format!(
                    "{} has no initial value for global `{}`",
                    global.section, global.name
                )
            })?;
            let start = global.offset as usize;
            let slot = data.get_mut(start..start + bytes.len()).with_context(|| {
                format!("global `{}` lies outside {}", global.name, global.section)
            })?;
            slot.copy_from_slice(bytes);
        }
        for (name, entries) in &run.choices.map_sizes {
            let mut map = open
                .maps_mut()
                .find(|m| m.name() == name.as_str())
                .with_context(|| format!("object has no map `{name}`"))?;
            map.set_max_entries(*entries)
                .with_context(|| format!("cannot size map `{name}` to {entries} entries"))?;
        }
        for mut prog in open.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if let Some(i) = pkg.programs.iter().position(|p| p.name == name) {
                prog.set_autoload(run.enabled[i]);
            }
        }
        Ok(Configured { package, run, open })
    }

    /// What loading consumes.
    pub fn into_parts(self) -> (Verified, Invocation, OpenObject) {
        (self.package, self.run, self.open)
    }
}

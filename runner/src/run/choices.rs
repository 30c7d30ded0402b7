//! The choices a package's declarations add to `runner run`'s command line, made the way
//! the program's own front end would: switches (flags with no global), `--no-program`,
//! `--map-size`, the package's defaults, values one flag implies for other globals, the
//! programs each condition leaves in or out, and the size of each map the object leaves
//! to userspace.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::args;
use crate::spec::flags;
use crate::spec::package::{Channel, Entries, Map, MapType, Package};

/// What the command line and the package's declarations decide beyond the flags of globals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Choices {
    /// The value of each of the package's switches, in order.
    pub switches: Vec<(String, bool)>,
    /// Programs left out with `--no-program`.
    pub left_out: Vec<String>,
    /// The size each map is created with, where the runner sets it.
    pub map_sizes: Vec<(String, u32)>,
}

fn runner_option(arg: Arg) -> Arg {
    arg.help_heading("Runner options")
}

/// The arguments for `pkg`'s switches and the runner's `--no-program` and `--map-size`.
pub(crate) fn args(mut cmd: Command, pkg: &Package) -> Command {
    cmd = cmd
        .arg(runner_option(
            Arg::new("no-program")
                .long("no-program")
                .value_name("PROGRAM")
                .action(ArgAction::Append)
                .help("Leave this program out (repeatable); `runner info` lists them"),
        ))
        .arg(runner_option(
            Arg::new("map-size")
                .long("map-size")
                .value_name("MAP=ENTRIES")
                .action(ArgAction::Append)
                .value_parser(|t: &str| args::pair(t, "MAP=ENTRIES, e.g. start=10240"))
                .help("Create this map with this many entries (repeatable)"),
        ));
    for switch in &pkg.switches {
        let (long, alias) = flags::spellings(&switch.name);
        let mut arg = Arg::new(long.clone())
            .long(long)
            .help(format!("{} [switch]", switch.help))
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(clap::builder::BoolishValueParser::new())
            .action(ArgAction::Set)
            .help_heading("Program options");
        if let Some(alias) = alias {
            arg = arg.alias(alias);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Read the choices from parsed arguments; a name that does not exist is a usage error.
pub(crate) fn from_matches(pkg: &Package, matches: &ArgMatches) -> Result<Choices, String> {
    let switches = pkg
        .switches
        .iter()
        .map(|s| {
            let on = matches.get_one::<bool>(&s.name).copied().unwrap_or(false);
            (s.name.clone(), on)
        })
        .collect();
    let left_out: Vec<String> = matches
        .get_many::<String>("no-program")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    for name in &left_out {
        if !pkg.programs.iter().any(|p| &p.name == name) {
            let names: Vec<&str> = pkg.programs.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "--no-program names `{name}`, which this package does not have (programs: {})",
                names.join(", ")
            ));
        }
    }
    let mut map_sizes = Vec::new();
    for (map, n) in matches
        .get_many::<(String, String)>("map-size")
        .into_iter()
        .flatten()
    {
        map_sizes.push((map.clone(), parse_size(n)?));
    }
    Ok(Choices {
        switches,
        left_out,
        map_sizes,
    })
}

fn parse_size(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "--map-size: `{text}` is no map size (1 to {})",
            u32::MAX
        )),
    }
}

/// The globals' values for this run: those the user set, then what those imply for globals
/// the user did not set, then the package's default for globals whose default is not the
/// compiled value.
pub(crate) fn complete_values(
    pkg: &Package,
    values: &mut Vec<(usize, Vec<u8>)>,
) -> Result<(), String> {
    let set_by_user: Vec<usize> = values.iter().map(|(i, _)| *i).collect();
    for &i in &set_by_user {
        for implied in &pkg.globals[i].implies {
            let Some(target) = pkg.globals.iter().position(|g| g.name == implied.global) else {
                continue;
            };
            if values.iter().any(|(j, _)| *j == target) {
                continue;
            }
            let text = match &implied.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            values.push((target, flags::encode(&pkg.globals[target].ty, &text)?));
        }
    }
    for (i, global) in pkg.globals.iter().enumerate() {
        if global.compiled.is_none() || values.iter().any(|(j, _)| *j == i) {
            continue;
        }
        let text = match &global.default {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let bytes = flags::encode(&global.ty, &text)
            .map_err(|e| format!("the package's default of `{}`: {e}", global.name))?;
        values.push((i, bytes));
    }
    Ok(())
}

/// Whether flag `name` (a bool global or a switch) is on in this run.
pub(crate) fn flag_on(
    pkg: &Package,
    values: &[(usize, Vec<u8>)],
    choices: &Choices,
    name: &str,
) -> bool {
    if let Some((_, on)) = choices.switches.iter().find(|(s, _)| s == name) {
        return *on;
    }
    let Some(index) = pkg.globals.iter().position(|g| g.name == name) else {
        return false;
    };
    match values.iter().find(|(i, _)| *i == index) {
        Some((_, bytes)) => bytes.iter().any(|&b| b != 0),
        None => pkg.globals[index].default == serde_json::Value::Bool(true),
    }
}

/// The size each map gets: `--map-size`, else the package's declaration; a map the object
/// declares without a size and that has none of either is a usage error naming it.
pub(crate) fn map_sizes(
    pkg: &Package,
    values: &[(usize, Vec<u8>)],
    choices: &Choices,
    system: &dyn Fn(Entries) -> u32,
) -> Result<Vec<(String, u32)>, String> {
    for (name, _) in &choices.map_sizes {
        if !pkg.maps.iter().any(|m| &m.name == name) {
            let names: Vec<&str> = pkg.maps.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "--map-size names map `{name}`, which this package does not have (maps: {})",
                names.join(", ")
            ));
        }
    }
    let mut out = Vec::new();
    for map in &pkg.maps {
        if let Some((_, n)) = choices.map_sizes.iter().find(|(m, _)| m == &map.name) {
            out.push((map.name.clone(), *n));
        } else if let Some(size) = &map.size {
            let entries = *size.pick(&|flag| flag_on(pkg, values, choices, flag));
            out.push((map.name.clone(), system(entries)));
        } else if let Some(entries) = roomier_ring(pkg, map) {
            out.push((map.name.clone(), entries));
        } else if map.max_entries == 0 && needs_size(map.kind) {
            return Err(format!(
                "map `{}` has no size (the object leaves max_entries to userspace): pass --map-size {}=ENTRIES",
                map.name, map.name
            ));
        }
    }
    Ok(out)
}

/// An event ring that holds too few of its records for a burst gets more room
/// (`channel::roomier_size`), said on stderr with how to keep the program's size.
fn roomier_ring(pkg: &Package, map: &Map) -> Option<u32> {
    let event = pkg
        .events
        .iter()
        .find(|e| e.map == map.name && e.channel == Channel::Ringbuf)?;
    let size = crate::channel::roomier_size(map.max_entries, event.ty.size())?;
    crate::note!(
        "runner: ring `{}` holds {} records of {} bytes; giving it {} KiB (--map-size {}={} keeps its size)",
        map.name,
        u64::from(map.max_entries) / crate::channel::record_room(event.ty.size()),
        event.ty.size(),
        size >> 10,
        map.name,
        map.max_entries
    );
    Some(size)
}

/// Whether a map of this type needs a size: not perf event arrays (libbpf gives them one
/// per CPU) nor the local storages (sized by what they are attached to).
fn needs_size(kind: MapType) -> bool {
    !matches!(
        kind,
        MapType::PerfEventArray
            | MapType::SkStorage
            | MapType::InodeStorage
            | MapType::TaskStorage
            | MapType::CgrpStorage
            | MapType::CgroupStorage
            | MapType::PercpuCgroupStorage
            | MapType::StructOps
    )
}

/// A size the system gives: a number as it is, `pid_max` from /proc, the number of
/// possible CPUs from /sys.
pub(crate) fn system_entries(entries: Entries) -> u32 {
    match entries {
        Entries::Count(n) => n,
        Entries::PidMax => std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(32768),
        Entries::Ncpus => {
            let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")
                .unwrap_or_else(|_| "0".into());
            let last = text.trim().rsplit([',', '-']).next().unwrap_or("0");
            last.parse::<u32>().map_or(1, |n| n + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::package::Choice;

    #[test]
    fn sizes_follow_the_flags_and_the_system() {
        let choice = Choice::If {
            flag: "per_pid".into(),
            then: Box::new(Choice::Is(Entries::PidMax)),
            otherwise: Box::new(Choice::Is(Entries::Count(1))),
        };
        let system = |e: Entries| match e {
            Entries::PidMax => 4_194_304,
            Entries::Ncpus => 2,
            Entries::Count(n) => n,
        };
        assert_eq!(system(*choice.pick(&|_| true)), 4_194_304);
        assert_eq!(system(*choice.pick(&|_| false)), 1);
        assert!(system_entries(Entries::Ncpus) >= 1);
        assert!(system_entries(Entries::PidMax) >= 301);
        assert!(parse_size("0").is_err() && parse_size("x").is_err());
        assert_eq!(parse_size("10240"), Ok(10240));
    }
}

//! Event channels: where records come from. A ring buffer and a perf event array are two
//! implementations of one [`Channel`] trait (a descriptor to wait on, bounded consumption,
//! a lost count, whether its records wake a sleeping reader), so the event loop waits on
//! every channel the same way. Adding a kind of
//! channel is one new file, one [`crate::spec::vocab::Channel`] variant and one arm in
//! [`open`].

mod perfbuf;
mod ringbuf;
mod source;
mod wakeup;

use std::rc::Rc;

use libbpf_rs::MapHandle;

use crate::spec::package::{Channel as Kind, Event};

pub(crate) use ringbuf::{record_room, roomier_size};
pub(crate) use source::{Channel, LostCounter};
pub(crate) use wakeup::WakeFlag;

/// Open the channel of `event` on its map, with the program's own lost-event counter
/// (`runner:lost`) and its flag for a sleeping reader (`runner/ring.h`) when it has them.
pub(crate) fn open(
    event: &Event,
    map: MapHandle,
    counter: Option<LostCounter>,
    wake: Option<Rc<WakeFlag>>,
) -> std::io::Result<Box<dyn Channel>> {
    Ok(match event.channel {
        Kind::Ringbuf => Box::new(ringbuf::Ringbuf::open(
            &event.map,
            map,
            counter,
            event.ty.size(),
            wake,
        )?),
        Kind::PerfEventArray => Box::new(perfbuf::PerfBuf::open(&event.map, map, event.ty.size())?),
    })
}

//! Faults of stores and views, which no single request can show.
//!
//! - `lost-update`: a read-modify-write of an instance's keys without a lock (below);
//! - `legacy-second-store`: API 2.0's UnBindInstanceKey keeps the CVM bindings it knows in a
//!   store of its own, filled from the instance the first time it touches it, and writes that
//!   store back: an API 3.0 change made since is undone by the next API 2.0 call;
//! - `lagging-view`: `DescribeKeyPairs` shows the bindings as they were before the last call
//!   that could change one, until the next such call.
//!
//! `lost-update`:
//! Under the fault every request first reads every instance's keys, waits a few milliseconds
//! (the race window: another request may change them meanwhile), and is then answered as usual
//! except that an unbind removes its keys from the keys it read, not from the ones the instance
//! holds now, and writes the result back. Alone, the read is what the instance holds, so a
//! request that meets no other on its instance is answered exactly as by a correct emulator:
//! the single-request run, whose per-instance locks never send two such requests at once,
//! cannot see the fault. Two requests on one instance at once lose the earlier one's update.

use std::collections::HashMap;
use std::time::Duration;

use super::{Emulator, Fault, ADMIN_PREFIX};
use crate::protocol::{HttpRequest, HttpResponse};
use crate::spec::Product;

/// How long a request waits between reading the keys and writing them back.
const WINDOW: Duration = Duration::from_millis(10);

tokio::task_local! {
    /// The keys each instance held when the request read them.
    static READ: HashMap<(Product, String), Vec<String>>;
}

/// The stores the faults keep beside the world.
#[derive(Debug, Default)]
pub(super) struct Stores {
    /// `legacy-second-store`: the keys API 2.0 believes each CVM instance holds.
    pub(super) legacy: HashMap<String, Vec<String>>,
    /// `lagging-view`: each CVM instance's keys before the last call that could change one.
    pub(super) lagged: Option<HashMap<String, Vec<String>>>,
}

/// Answers a request as [`Emulator::handle`] does, with the faults of this module when on.
pub async fn handle(emu: &Emulator, req: &HttpRequest, now: i64) -> HttpResponse {
    if req.path().starts_with(ADMIN_PREFIX) {
        return emu.handle(req, now);
    }
    if emu.has(Fault::LaggingView) && changes(req) {
        let mut held = emu.lock();
        let keys = cvm_keys(&held.world);
        held.stores.lagged = Some(keys);
    }
    if !emu.has(Fault::LostUpdate) {
        return emu.handle(req, now);
    }
    let read: HashMap<(Product, String), Vec<String>> = emu
        .lock()
        .world
        .instances
        .iter()
        .map(|i| ((i.product, i.id.clone()), i.keys.clone()))
        .collect();
    tokio::time::sleep(WINDOW).await;
    READ.scope(read, async { emu.handle(req, now) }).await
}

/// The keys the current request read for this instance, when it runs under the fault.
pub(super) fn read_keys(product: Product, id: &str) -> Option<Vec<String>> {
    READ.try_with(|read| read.get(&(product, id.to_string())).cloned())
        .ok()
        .flatten()
}

/// Whether a request may change a binding (any action but a read).
fn changes(req: &HttpRequest) -> bool {
    crate::protocol::parse_request(req).is_ok_and(|p| !p.action.starts_with("Describe"))
}

fn cvm_keys(world: &crate::world::World) -> HashMap<String, Vec<String>> {
    world
        .instances
        .iter()
        .filter(|i| i.product == Product::Cvm)
        .map(|i| (i.id.clone(), i.keys.clone()))
        .collect()
}

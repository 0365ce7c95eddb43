//! Reading what an export returns without letting the plugin choose how much
//! the host allocates.
//!
//! Bindgen's types own their strings: wasmtime copies every string of a
//! result before the host sees its size, and a list's strings may all point
//! at the same bytes of guest memory, so a 16 MiB string listed 64 times
//! costs the host 1 GiB. Here results are lifted lazily: lists as
//! [`WasmList`] (only their length is read), strings as [`WasmStr`] (a
//! pointer into guest memory). They are copied one at a time against a byte
//! budget, and the first string past it ends the call with
//! `OutputTooLarge`, so what the host copies is bounded by the budget plus
//! nothing.

use super::bindings::{self, wit};
use super::error::CallErrorKind;
use super::sandbox::CallState;
use crate::spec::Kind;
use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, ComponentType, Instance, Lift, Lower,
    WasmList, WasmStr,
};

/// Entries `describe` (or definitions `tool.definitions`) may list.
pub const MAX_ENTRIES: usize = 1024;
/// Bytes each listed entry counts in the output budget besides its strings,
/// so a list of empty records is not free.
const ENTRY_OVERHEAD: usize = 32;
/// Bytes of a guest's error message kept.
const MAX_GUEST_ERROR: usize = 4 << 10;

/// `workflow:plugin/types.entry`, its strings left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(super) struct RawEntry {
    name: WasmStr,
    kind: wit::Kind,
    description: WasmStr,
}

/// `workflow:plugin/tool.tool-definition`, its strings left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(super) struct RawToolDefinition {
    name: WasmStr,
    description: WasmStr,
    parameters: WasmStr,
}

/// `workflow:plugin/guardrail.verdict`, its strings left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(super) struct RawVerdict {
    tripwire: bool,
    message: WasmStr,
    info: WasmStr,
}

/// An entry as `describe` listed it, copied under the budget.
pub(super) struct Entry {
    pub name: String,
    pub kind: Kind,
    pub description: String,
}

/// A tool definition, copied under the budget.
pub(super) struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub parameters: String,
}

/// A verdict, copied under the budget.
pub(super) struct Verdict {
    pub tripwire: bool,
    pub message: String,
    pub info: String,
}

/// What a lifting closure hands back: the converted value, or why the host
/// refused to read it (too large, not valid text).
pub(super) type Lifted<T> = Result<T, CallErrorKind>;

/// How many bytes of one call's output the host still copies.
pub(super) struct Budget {
    used: usize,
    limit: usize,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Self {
        Budget { used: 0, limit }
    }

    /// Counts `bytes` that are not a string (a list entry's own size).
    fn charge(&mut self, bytes: usize) -> Lifted<()> {
        let size = self.used.saturating_add(bytes);
        if size > self.limit {
            return Err(CallErrorKind::OutputTooLarge {
                size,
                limit: self.limit,
            });
        }
        self.used = size;
        Ok(())
    }

    /// Copies `s` out of guest memory if it fits. A UTF-8 string is read in
    /// place (validated, not copied) before its length is known, so the only
    /// copy made is of a string that fits.
    pub(super) fn take(&mut self, store: &Store<CallState>, s: &WasmStr) -> Lifted<String> {
        let text = s
            .to_str(store)
            .map_err(|e| CallErrorKind::BadOutput(format!("invalid string: {e}")))?;
        self.charge(text.len())?;
        Ok(text.into_owned())
    }
}

/// A guest's error message, clipped before it is copied.
fn guest_error(store: &Store<CallState>, s: &WasmStr) -> String {
    match s.to_str(store) {
        Ok(text) => {
            let end = text.floor_char_boundary(MAX_GUEST_ERROR);
            text[..end].to_owned()
        }
        Err(e) => format!("<invalid error string: {e}>"),
    }
}

/// The export indices of the functions the host calls, found once at load.
#[derive(Clone, Default)]
pub(super) struct RawExports {
    pub describe: Option<ComponentExportIndex>,
    pub guard: Option<ComponentExportIndex>,
    pub map_input: Option<ComponentExportIndex>,
    pub reduce: Option<ComponentExportIndex>,
    pub definitions: Option<ComponentExportIndex>,
    pub invoke: Option<ComponentExportIndex>,
    pub guardrail: Option<ComponentExportIndex>,
}

impl RawExports {
    pub(super) fn new(component: &Component, version: &str) -> Self {
        let func = |iface: &str, name: &str| {
            let instance = component
                .get_export_index(None, &format!("{}/{iface}@{version}", bindings::PACKAGE))?;
            component.get_export_index(Some(&instance), name)
        };
        RawExports {
            describe: func("describe", "describe"),
            guard: func(bindings::interface(Kind::Guard), "check"),
            map_input: func(bindings::interface(Kind::InputMapper), "map-input"),
            reduce: func(bindings::interface(Kind::Reducer), "reduce"),
            definitions: func(bindings::interface(Kind::Tool), "definitions"),
            invoke: func(bindings::interface(Kind::Tool), "invoke"),
            guardrail: func(bindings::interface(Kind::Guardrail), "check"),
        }
    }
}

/// Calls export `index` of `instance` with `params`, its results lifted
/// lazily (as `R`).
pub(super) async fn call<P, R>(
    store: &mut Store<CallState>,
    instance: &Instance,
    index: &ComponentExportIndex,
    params: P,
) -> wasmtime::Result<R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    let func = instance.get_typed_func::<P, R>(&mut *store, index)?;
    func.call_async(&mut *store, params).await
}

/// `result<T, string>` as the harness wants it: the guest's error clipped,
/// the value converted by `ok`.
pub(super) fn result<T, U>(
    store: &mut Store<CallState>,
    r: Result<T, WasmStr>,
    ok: impl FnOnce(&mut Store<CallState>, T) -> Lifted<U>,
) -> Result<Lifted<U>, String> {
    match r {
        Ok(v) => Ok(ok(store, v)),
        Err(e) => Err(guest_error(store, &e)),
    }
}

/// `describe`'s list, at most [`MAX_ENTRIES`] entries and `limit` bytes.
pub(super) fn entries(
    store: &mut Store<CallState>,
    list: &WasmList<RawEntry>,
    limit: usize,
) -> Lifted<Vec<Entry>> {
    let mut budget = Budget::new(limit);
    each(store, list, |store, e: RawEntry| {
        budget.charge(ENTRY_OVERHEAD)?;
        Ok(Entry {
            name: budget.take(store, &e.name)?,
            kind: e.kind.into(),
            description: budget.take(store, &e.description)?,
        })
    })
}

/// `tool.definitions`' list, at most [`MAX_ENTRIES`] and `limit` bytes.
pub(super) fn tool_definitions(
    store: &mut Store<CallState>,
    list: &WasmList<RawToolDefinition>,
    limit: usize,
) -> Lifted<Vec<ToolDefinition>> {
    let mut budget = Budget::new(limit);
    each(store, list, |store, d: RawToolDefinition| {
        budget.charge(ENTRY_OVERHEAD)?;
        Ok(ToolDefinition {
            name: budget.take(store, &d.name)?,
            description: budget.take(store, &d.description)?,
            parameters: budget.take(store, &d.parameters)?,
        })
    })
}

/// A guardrail's verdict, its two strings under one `limit`.
pub(super) fn verdict(
    store: &mut Store<CallState>,
    v: RawVerdict,
    limit: usize,
) -> Lifted<Verdict> {
    let mut budget = Budget::new(limit);
    Ok(Verdict {
        tripwire: v.tripwire,
        message: budget.take(store, &v.message)?,
        info: budget.take(store, &v.info)?,
    })
}

/// Walks `list` one element at a time, refusing more than [`MAX_ENTRIES`].
fn each<T: Lift, U>(
    store: &mut Store<CallState>,
    list: &WasmList<T>,
    mut f: impl FnMut(&mut Store<CallState>, T) -> Lifted<U>,
) -> Lifted<Vec<U>> {
    if list.len() > MAX_ENTRIES {
        return Err(CallErrorKind::BadOutput(format!(
            "lists {} entries, more than the {MAX_ENTRIES} the host accepts",
            list.len()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let item = match list.get(&mut *store, i) {
            Some(Ok(item)) => item,
            Some(Err(e)) => return Err(CallErrorKind::BadOutput(format!("entry {i}: {e}"))),
            None => break,
        };
        out.push(f(store, item)?);
    }
    Ok(out)
}

//! Reading what an export returns without letting the plugin choose how much
//! the host allocates.
//!
//! Bindgen's types own their strings: wasmtime copies every string of a
//! result before the host sees its size, and a list's strings may all point
//! at the same bytes of guest memory, so a 16 MiB string listed 64 times
//! costs the host 1 GiB. wasmtime also runs the guest's post-return (which
//! frees the result) before returning, so nothing can be read lazily after
//! the call. Here the list types of `describe` and `tool.definitions`
//! ([`CappedList`]) check the entry count and then give their strings
//! ([`GuestStr`]) a byte budget ([`MAX_LIFT_BYTES`]) checked *before* each
//! copy, during the lift itself. Other single strings are bounded by the
//! guest's memory cap; everything is then checked against the plugin's
//! output limit.

use super::bindings::{self, wit};
use super::error::CallErrorKind;
use super::sandbox::CallState;
use crate::spec::Kind;
use std::cell::Cell;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, ComponentType, Instance, Lift, Lower,
};
use wasmtime::{Store, ValRaw};

/// Bytes of strings one list lift (`describe`, `tool.definitions`) may copy
/// before it is refused. wasmtime runs the guest's post-return (which frees
/// the result) before the caller sees it, so the strings must be copied
/// during the lift; this budget is checked before each copy.
pub const MAX_LIFT_BYTES: usize = 4 << 20;

thread_local! {
    /// `(used, limit)` of the list lift under way on this thread. A lift is
    /// synchronous host code, so it starts and ends on one thread.
    static LIFT_BUDGET: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Why a lift was refused, carried through wasmtime's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Refused(pub CallErrorKind);

fn charge_lift(bytes: usize) -> wasmtime::Result<()> {
    LIFT_BUDGET.with(|b| match b.get() {
        None => Ok(()),
        Some((used, limit)) => {
            let size = used.saturating_add(bytes);
            if size > limit {
                return Err(wasmtime::Error::new(Refused(
                    CallErrorKind::OutputTooLarge { size, limit },
                )));
            }
            b.set(Some((size, limit)));
            Ok(())
        }
    })
}

/// A guest string, copied during the lift once its length fits the budget
/// of the list lift under way (if any).
pub(super) struct GuestStr(String);

// SAFETY: same representation and type check as `String`, whose lift this
// delegates to.
unsafe impl ComponentType for GuestStr {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;
    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: delegates to `String` after a length check.
unsafe impl Lift for GuestStr {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        charge_lift(src[1].get_u32() as usize)?;
        Ok(GuestStr(String::linear_lift_from_flat(cx, ty, src)?))
    }
    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let len = bytes
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| wasmtime::format_err!("string out of bounds"))?;
        charge_lift(len as usize)?;
        Ok(GuestStr(String::linear_lift_from_memory(cx, ty, bytes)?))
    }
}

/// A list of at most [`MAX_ENTRIES`] records whose strings together take at
/// most [`MAX_LIFT_BYTES`]; both checked before anything is copied.
pub(super) struct CappedList<R>(Vec<R>);

impl<R> CappedList<R> {
    fn check(len: u32) -> wasmtime::Result<()> {
        if len as usize > MAX_ENTRIES {
            return Err(wasmtime::Error::new(Refused(CallErrorKind::BadOutput(
                format!("lists {len} entries, more than the {MAX_ENTRIES} the host accepts"),
            ))));
        }
        Ok(())
    }
    fn budgeted(f: impl FnOnce() -> wasmtime::Result<Vec<R>>) -> wasmtime::Result<Self> {
        let previous = LIFT_BUDGET.with(|b| b.replace(Some((0, MAX_LIFT_BYTES))));
        let r = f();
        LIFT_BUDGET.with(|b| b.set(previous));
        r.map(CappedList)
    }
}

// SAFETY: same representation and type check as `Vec<R>`.
unsafe impl<R: ComponentType> ComponentType for CappedList<R> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = <Vec<R> as ComponentType>::ABI;
    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<R> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: delegates to `Vec<R>` after the count check.
unsafe impl<R: Lift> Lift for CappedList<R> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Self::check(src[1].get_u32())?;
        Self::budgeted(|| Vec::<R>::linear_lift_from_flat(cx, ty, src))
    }
    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let len = bytes
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| wasmtime::format_err!("list out of bounds"))?;
        Self::check(len)?;
        Self::budgeted(|| Vec::<R>::linear_lift_from_memory(cx, ty, bytes))
    }
}

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
    name: GuestStr,
    kind: wit::Kind,
    description: GuestStr,
}

/// `workflow:plugin/tool.tool-definition`, its strings left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(super) struct RawToolDefinition {
    name: GuestStr,
    description: GuestStr,
    parameters: GuestStr,
}

/// `workflow:plugin/guardrail.verdict`, its strings left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(super) struct RawVerdict {
    tripwire: bool,
    message: GuestStr,
    info: GuestStr,
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
    pub(super) fn take(&mut self, _store: &Store<CallState>, s: &GuestStr) -> Lifted<String> {
        self.charge(s.0.len())?;
        Ok(s.0.clone())
    }
}

/// A guest's error message, clipped before it is copied.
fn guest_error(_store: &Store<CallState>, s: &GuestStr) -> String {
    let end = s.0.floor_char_boundary(MAX_GUEST_ERROR);
    s.0[..end].to_owned()
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
            let instance = component.get_export_index(
                None,
                format!("{}/{iface}@{version}", bindings::PACKAGE).as_str(),
            )?;
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
    r: Result<T, GuestStr>,
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
    list: &CappedList<RawEntry>,
    limit: usize,
) -> Lifted<Vec<Entry>> {
    let mut budget = Budget::new(limit);
    each(store, list, |store, e: &RawEntry| {
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
    list: &CappedList<RawToolDefinition>,
    limit: usize,
) -> Lifted<Vec<ToolDefinition>> {
    let mut budget = Budget::new(limit);
    each(store, list, |store, d: &RawToolDefinition| {
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

/// Converts each element of `list` (already bounded by its lift).
fn each<T, U>(
    store: &mut Store<CallState>,
    list: &CappedList<T>,
    mut f: impl FnMut(&mut Store<CallState>, &T) -> Lifted<U>,
) -> Lifted<Vec<U>> {
    list.0.iter().map(|item| f(store, item)).collect()
}

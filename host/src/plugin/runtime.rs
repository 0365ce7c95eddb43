//! The process-wide wasmtime engine and everything shared by all plugins.

use super::cache::{CacheOutcome, CompileCache};
use super::policy::{PluginPolicy, PolicyError};
use super::sandbox::{CallState, MAX_TABLE_ELEMENTS, add_host_imports};
use super::trust::{CacheError, default_cache_key_file};
use super::types::Limits;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Guests yield to the executor at least this
/// often, and deadlines are enforced with this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each pooled memory and table kept resident between calls.
const KEEP_RESIDENT: usize = 2 << 20;
/// Per component: core instances, linear memories and tables. A component
/// may instantiate one core module many times; without these, one call could
/// hold hundreds of memories and drain the pool that every call shares. The
/// largest example plugins (CPython, StarlingMonkey) fit with room to spare.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
pub const MAX_TABLES_PER_COMPONENT: u32 = 32;

/// Options for [`Runtime::new`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The secret that authenticates cache entries; `None`: the default
    /// place ([`default_cache_key_file`]).
    pub cache_key_file: Option<PathBuf>,
    /// Plugin calls running at once. Bounds the pooling allocator's slots;
    /// further calls wait for a free slot, up to their own timeout.
    pub max_concurrent_calls: u32,
    /// The operator's limits: ceilings and each plugin's share of the slots.
    pub policy: PluginPolicy,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: super::cache::default_cache_dir(),
            cache_key_file: None,
            max_concurrent_calls: 64,
            policy: PluginPolicy::default(),
        }
    }
}

/// Errors creating the runtime itself (not a plugin's fault).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to configure the WebAssembly engine: {0}")]
    Engine(String),
    #[error("failed to set up host imports: {0}")]
    Linker(String),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("host config: {0}")]
    Policy(#[from] PolicyError),
}

/// One wasmtime `Engine` (component model, async, epoch interruption,
/// pooling allocator), the `Linker` with the host imports, the compile cache
/// and the epoch ticker. Create one per process and share it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<CompileCache>,
    /// Every plugin call holds one of these while it runs.
    pub(super) permits: Semaphore,
    pub(super) slots: u32,
    /// Calls one plugin build may run at once.
    pub(super) per_plugin: u32,
    /// Each plugin build's share of `permits`, by SHA-256; an entry lives
    /// while a call holds it.
    plugin_permits: Mutex<HashMap<Arc<str>, Weak<Semaphore>>>,
    policy: PluginPolicy,
    /// Told about every plugin call a run makes (a server's metrics).
    observer: std::sync::OnceLock<Arc<dyn CallObserver>>,
}

/// Hears about every plugin call a run makes, after it returns: which
/// plugin, as what, how long it took and whether it failed.
pub trait CallObserver: Send + Sync + 'static {
    fn plugin_call(&self, plugin: &str, kind: crate::spec::Kind, elapsed: Duration, ok: bool);
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Arc<Runtime>, RuntimeError> {
        options.policy.check()?;
        let slots = options.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::new();
        // A component is several core instances (CPython's is a dozen);
        // size the pool so `slots` calls of the largest plugins fit at once.
        pool.total_component_instances(slots)
            .total_core_instances(slots * 32)
            .total_memories(slots * 4)
            .total_tables(slots * 32)
            .total_stacks(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(8)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(Limits::MAX_MEMORY_BYTES as usize)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20)
            // Reuse slots warm: reset only the pages a call dirtied (Linux
            // 6.7+ PAGEMAP_SCAN) and keep them resident, instead of
            // madvise + page faults on every instantiation.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .parallel_compilation(true);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let mut linker: Linker<CallState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Linker(e.to_string()))?;
        // Every component gets wasi:http (componentize-js builds import
        // it); only a granted tool call may send (`http.rs`).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Linker(e.to_string()))?;
        add_host_imports(&mut linker).map_err(|e| RuntimeError::Linker(e.to_string()))?;

        spawn_epoch_ticker(&engine)
            .map_err(|e| RuntimeError::Engine(format!("epoch ticker: {e}")))?;
        let cache = match options.cache_dir {
            Some(dir) => {
                let key_file = options
                    .cache_key_file
                    .or_else(default_cache_key_file)
                    .ok_or(CacheError::NoKeyPath)?;
                Some(CompileCache::open(dir, &key_file, &engine)?)
            }
            None => None,
        };
        Ok(Arc::new(Runtime {
            engine,
            linker,
            cache,
            permits: Semaphore::new(slots as usize),
            slots,
            per_plugin: options.policy.per_plugin_cap(slots),
            plugin_permits: Mutex::new(HashMap::new()),
            policy: options.policy,
            observer: std::sync::OnceLock::new(),
        }))
    }

    /// Sets the one observer of plugin calls; `false` if one is set already.
    pub fn set_observer(&self, observer: Arc<dyn CallObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub(super) fn observer(&self) -> Option<&Arc<dyn CallObserver>> {
        self.observer.get()
    }

    /// The operator's limits on plugins.
    pub fn policy(&self) -> &PluginPolicy {
        &self.policy
    }

    /// The share of the slots of the plugin build `digest`: shared by every
    /// call of that build in the process, whichever registry loaded it.
    pub(super) fn plugin_permits(&self, digest: &Arc<str>) -> Arc<Semaphore> {
        let mut map = self
            .plugin_permits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(permits) = map.get(digest).and_then(Weak::upgrade) {
            return permits;
        }
        // Forget builds no call holds any more before adding one.
        if map.len() >= 64 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let permits = Arc::new(Semaphore::new(self.per_plugin as usize));
        map.insert(digest.clone(), Arc::downgrade(&permits));
        permits
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }

    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.as_ref().map(|c| c.dir())
    }

    /// Compiles `wasm` (or loads it from the cache). Blocking.
    pub(crate) fn compile(
        &self,
        sha256_hex: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, sha256_hex, wasm),
            None => Ok((Component::new(&self.engine, wasm)?, CacheOutcome::Disabled)),
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`]. The thread holds only a
/// weak reference and ends when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}

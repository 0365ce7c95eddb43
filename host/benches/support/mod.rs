//! What the bench binaries share: their argument parser, where the
//! repository is, and a process's CPU time from `/proc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) struct Args(HashMap<String, String>);

impl Args {
    pub(crate) fn parse() -> (String, Args) {
        let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
        let mode = it.next().unwrap_or_else(|| "closed-loop".into());
        let mut map = HashMap::new();
        let rest: Vec<String> = it.collect();
        let mut i = 0;
        while i < rest.len() {
            let key = rest[i].trim_start_matches("--").to_string();
            let value = rest.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
            i += if value.is_some() { 2 } else { 1 };
            map.insert(key, value.unwrap_or_else(|| "true".into()));
        }
        (mode, Args(map))
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub(crate) fn num(&self, k: &str, default: f64) -> f64 {
        self.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// CPU seconds (user + system) of a process, from /proc.
pub(crate) fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

//! The spec's outbound HTTP grants (`plugins.NAME.allowed_hosts`,
//! `secrets`), built once per workflow and attached to its tool references.
//!
//! A secret header's value comes from the host's environment, which is the
//! operator's, while the spec may be someone else's. So, as with provider
//! keys ([`super::credentials`]), a `${VAR}` goes only to an origin the
//! operator paired it with (`--credential VAR=https://api.example.com`,
//! `[[credentials.pair]]`); a secret for a wildcard host names no one
//! origin and is refused.

use super::compile::{CompileError, CompileOptions};
use crate::plugin::HttpGrant;
use crate::spec::{HostPattern, SecretTemplate, Spec, SpecError, SpecErrors, json_key};
use std::collections::HashMap;
use std::sync::Arc;

/// The outbound HTTP grants of the spec's plugins, their secrets read
/// from the environment now: a missing variable fails the spec, not a call.
pub(super) fn http_grants(
    spec: &Spec,
    options: &CompileOptions,
) -> Result<HashMap<String, Arc<HttpGrant>>, CompileError> {
    let mut grants = HashMap::new();
    let mut errors = Vec::new();
    for (name, settings) in &spec.plugins {
        let unpaired = unpaired_secrets(name, settings, options);
        if !unpaired.is_empty() {
            errors.extend(unpaired);
            continue;
        }
        match HttpGrant::from_settings(name, settings, &options.egress, |var| {
            std::env::var(var).ok()
        }) {
            Ok(Some(grant)) => {
                grants.insert(name.clone(), Arc::new(grant));
            }
            Ok(None) => {}
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(grants)
    } else {
        Err(CompileError::Spec(SpecErrors::new(errors)))
    }
}

/// Each secret whose variable the operator did not pair with its origin.
fn unpaired_secrets(
    name: &str,
    settings: &crate::spec::PluginSettings,
    options: &CompileOptions,
) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let path = json_key(&json_key("$.plugins", name), "secrets");
    for (host, headers) in &settings.secrets {
        let at_host = json_key(&path, host);
        let Ok(pattern) = HostPattern::parse(host) else {
            continue; // validation reports it
        };
        let Some(origin) = pattern.origin() else {
            errors.push(SpecError::new(
                at_host,
                "a secret goes to one origin: list the exact host, not a wildcard",
            ));
            continue;
        };
        for (header, template) in headers {
            let Ok(template) = SecretTemplate::parse(template) else {
                continue;
            };
            for var in template.vars() {
                if !options.credentials.allows(var, &origin) {
                    errors.push(SpecError::new(
                        json_key(&at_host, header),
                        format!(
                            "`{var}` may not be sent to {origin}: the operator pairs them with \
                             `--credential {var}={origin}` or a [[credentials.pair]] in the host config"
                        ),
                    ));
                }
            }
        }
    }
    errors
}

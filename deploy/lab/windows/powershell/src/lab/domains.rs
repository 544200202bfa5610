//! `Add-AADCloudSyncADDomain -DomainName -Credential [-PreferredDomainControllers]` and
//! `Get-AADCloudSyncDomains`: the domains the agent serves.
//!
//! In the lab the domains live in `<ProgramData>\ProvdLabAgent\domains.json` (`state.rs`),
//! which the lab agent reports in its heartbeat (the emulator then publishes a resource per
//! domain, as the real service does once the module registered the domain). Adding checks
//! the agent's `Newtonsoft.Json.dll`: the module is built against Newtonsoft.Json 12, and an
//! install that ships 13 breaks the cmdlet with the error MicrosoftDocs/azure-docs#104689
//! shows verbatim; the lab MSI ships a placeholder with FileVersion 12.x, a test swaps in a
//! 13.x one. The credential is not checked against the domain [I: the real cmdlet binds
//! with it].

use std::path::Path;

use super::{WindowsLab, say, sys};
use crate::plan::Failure;
use crate::run::{Invocation, Output};
use crate::state::{self, Domain};
use crate::value::Value;

/// The Newtonsoft.Json the module was built against.
const NEWTONSOFT: &str =
    "Newtonsoft.Json, Version=12.0.0.0, Culture=neutral, PublicKeyToken=30ad4fe6b2a6aeed";

pub fn add(lab: &mut WindowsLab, call: &Invocation) -> Result<Vec<Output>, Failure> {
    let dll = lab
        .module
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(Path::new(
            r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent",
        ))
        .join("Newtonsoft.Json.dll");
    let version = dll
        .is_file()
        .then(|| sys::file_version(&dll.to_string_lossy()))
        .flatten();
    match version.as_deref() {
        Some(v) if v.split('.').next() == Some("12") => {}
        Some(_) => {
            return Err(call.failed(format!(
                "Could not load file or assembly '{NEWTONSOFT}' or one of its dependencies. The \
                 located assembly's manifest definition does not match the assembly reference. \
                 (Exception from HRESULT: 0x80131040)"
            )));
        }
        None => {
            return Err(call.failed(format!(
                "Could not load file or assembly '{NEWTONSOFT}' or one of its dependencies. The \
                 system cannot find the file specified."
            )));
        }
    }
    let domain = call.string("DomainName").unwrap_or_default().to_owned();
    let preferred = match call.get("PreferredDomainControllers") {
        Some(Value::Strings(dcs)) => dcs.clone(),
        _ => Vec::new(),
    };
    let mut domains: Vec<Domain> = lab.read(state::DOMAINS).unwrap_or_default();
    state::upsert(&mut domains, &domain, preferred.clone());
    lab.write(state::DOMAINS, &domains)
        .map_err(|e| call.failed(format!("Cannot store the agent's domains: {e}")))?;
    say(&format!(
        "Add-AADCloudSyncADDomain: {domain}, preferred domain controllers [{}]",
        preferred.join(", ")
    ));
    Ok(Vec::new())
}

pub fn list(lab: &WindowsLab) -> Vec<Output> {
    let domains: Vec<Domain> = lab.read(state::DOMAINS).unwrap_or_default();
    state::domain_objects(&domains)
}

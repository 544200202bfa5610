//! A bound LDAP connection: searches (paged), add/modify/delete, and the
//! security descriptor read and written with the SD_FLAGS control.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, Mod, SearchEntry};
use tracing::field::Empty;
use zeroize::Zeroizing;

use super::{LdapSettings, ldap_error, observed};
use crate::backends::directory::{
    Change, DirectoryError, DirectorySession, Entry, MANAGED_PASSWORD_ATTR, SD_FLAGS_OID, Scope,
    sd_flags_value,
};

/// Attribute names of a change list (values are never recorded: they may
/// be passwords).
fn attribute_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(",")
}

pub(super) async fn read_root_dse(
    dc: &str,
    ldap: &mut Ldap,
    timeout: Duration,
) -> Result<Entry, DirectoryError> {
    let span = ldap_span!(
        "ldap.search",
        dc,
        ldap.base = "",
        ldap.scope = "base",
        ldap.filter = "(objectClass=*)",
        ldap.entries = Empty,
    );
    observed(
        span,
        dc,
        "search",
        read_root_dse_unobserved(dc, ldap, timeout),
    )
    .await
}

async fn read_root_dse_unobserved(
    dc: &str,
    ldap: &mut Ldap,
    timeout: Duration,
) -> Result<Entry, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(timeout)
        .search("", ldap3::Scope::Base, "(objectClass=*)", vec!["*", "+"])
        .await
        .and_then(|r| r.success())
        .map_err(|e| ldap_error(dc, e))?;
    tracing::Span::current().record("ldap.entries", entries.len());
    entries
        .into_iter()
        .next()
        .map(|e| entry(SearchEntry::construct(e)))
        .ok_or_else(|| DirectoryError::Ldap {
            dc: dc.into(),
            code: 32,
            reason: "no RootDSE".into(),
        })
}

fn entry(e: SearchEntry) -> Entry {
    Entry {
        dn: e.dn,
        attrs: e
            .attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        bin_attrs: e
            .bin_attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    }
}

/// The blob out of a read entry: from the binary values, or from the text
/// ones if ldap3 took it for UTF-8 (possible, improbable). Every other copy
/// is zeroized here; ldap3's own buffers (the BER it decoded) are not ours
/// to zeroize.
fn managed_password_value(e: SearchEntry) -> Option<Zeroizing<Vec<u8>>> {
    let mut found = None;
    for (name, values) in e.bin_attrs {
        let mut values: Vec<Zeroizing<Vec<u8>>> = values.into_iter().map(Zeroizing::new).collect();
        if found.is_none() && name.eq_ignore_ascii_case(MANAGED_PASSWORD_ATTR) {
            found = values.pop();
        }
    }
    for (name, values) in e.attrs {
        let mut values: Vec<Zeroizing<String>> = values.into_iter().map(Zeroizing::new).collect();
        if found.is_none()
            && name.eq_ignore_ascii_case(MANAGED_PASSWORD_ATTR)
            && let Some(text) = values.pop()
        {
            found = Some(Zeroizing::new(text.as_bytes().to_vec()));
        }
    }
    found
}

fn value_set(values: &[Vec<u8>]) -> HashSet<&[u8]> {
    values.iter().map(Vec::as_slice).collect()
}

pub(super) struct LdapSession {
    pub(super) dc: String,
    pub(super) ldap: Ldap,
    pub(super) settings: LdapSettings,
}

impl LdapSession {
    async fn search_observed(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        let (scope, scope_name) = match scope {
            Scope::Base => (ldap3::Scope::Base, "base"),
            Scope::OneLevel => (ldap3::Scope::OneLevel, "one"),
            Scope::Subtree => (ldap3::Scope::Subtree, "sub"),
        };
        let span = ldap_span!(
            "ldap.search",
            self.dc,
            ldap.base = base,
            ldap.scope = scope_name,
            ldap.filter = filter,
            ldap.entries = Empty,
        );
        let dc = self.dc.clone();
        observed(
            span,
            &dc,
            "search",
            self.search_unobserved(base, scope, filter, attrs),
        )
        .await
    }

    async fn search_unobserved(
        &mut self,
        base: &str,
        scope: ldap3::Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.settings.page_size)),
        ];
        let dc = self.dc.clone();
        let mut stream = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .streaming_search_with(adapters, base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| ldap_error(&dc, e))?;
        let mut out = Vec::new();
        while let Some(raw) = stream.next().await.map_err(|e| ldap_error(&dc, e))? {
            out.push(entry(SearchEntry::construct(raw)));
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| ldap_error(&dc, e))?;
        tracing::Span::current().record("ldap.entries", out.len());
        Ok(out)
    }
}

#[async_trait::async_trait]
impl DirectorySession for LdapSession {
    fn server(&self) -> &str {
        &self.dc
    }

    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        read_root_dse(&self.dc, &mut self.ldap, self.settings.operation_timeout).await
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        self.search_observed(base, scope, filter, attrs).await
    }

    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        let control = RawControl {
            ctype: SD_FLAGS_OID.into(),
            crit: true,
            val: Some(sd_flags_value(sd_flags)),
        };
        let dc = self.dc.clone();
        let span = ldap_span!(
            "ldap.sd_read",
            dc,
            ldap.dn = dn,
            ldap.sd_flags = sd_flags,
            ldap.found = Empty
        );
        observed(span, &dc, "sd_read", async {
            let result = self
                .ldap
                .with_controls(control)
                .with_timeout(self.settings.operation_timeout)
                .search(
                    dn,
                    ldap3::Scope::Base,
                    "(objectClass=*)",
                    vec!["nTSecurityDescriptor"],
                )
                .await
                .and_then(|r| r.success());
            let found = match result {
                Ok((entries, _)) => Ok(entries.into_iter().next().and_then(|e| {
                    let e = SearchEntry::construct(e);
                    e.bin_attrs
                        .into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("nTSecurityDescriptor"))
                        .and_then(|(_, mut v)| v.pop())
                })),
                Err(err) => match ldap_error(&self.dc, err) {
                    DirectoryError::NoSuchObject { .. } => Ok(None),
                    other => Err(other),
                },
            };
            if let Ok(sd) = &found {
                tracing::Span::current().record("ldap.found", sd.is_some());
            }
            found
        })
        .await
    }

    async fn read_managed_password(
        &mut self,
        dn: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DirectoryError> {
        let dc = self.dc.clone();
        // The span records whether the DC handed the value out, never it.
        let span = ldap_span!("ldap.gmsa_read", dc, ldap.dn = dn, ldap.found = Empty);
        observed(span, &dc, "gmsa_read", async {
            let (entries, _) = self
                .ldap
                .with_timeout(self.settings.operation_timeout)
                .search(
                    dn,
                    ldap3::Scope::Base,
                    "(objectClass=*)",
                    vec![MANAGED_PASSWORD_ATTR],
                )
                .await
                .and_then(|r| r.success())
                .map_err(|e| ldap_error(&dc, e))?;
            let blob = entries
                .into_iter()
                .next()
                .and_then(|e| managed_password_value(SearchEntry::construct(e)));
            tracing::Span::current().record("ldap.found", blob.is_some());
            Ok(blob)
        })
        .await
    }

    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        let control = RawControl {
            ctype: SD_FLAGS_OID.into(),
            crit: true,
            val: Some(sd_flags_value(sd_flags)),
        };
        let values: HashSet<&[u8]> = HashSet::from([descriptor]);
        let attr: &[u8] = b"nTSecurityDescriptor";
        let dc = self.dc.clone();
        let span = ldap_span!(
            "ldap.sd_write",
            dc,
            ldap.dn = dn,
            ldap.sd_flags = sd_flags,
            ldap.sd_bytes = descriptor.len(),
        );
        let call = self
            .ldap
            .with_controls(control)
            .with_timeout(self.settings.operation_timeout)
            .modify(dn, vec![Mod::Replace(attr, values)]);
        observed(span, &dc, "sd_write", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn add(
        &mut self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        let attrs: Vec<(&[u8], HashSet<&[u8]>)> = attrs
            .iter()
            .map(|(name, values)| {
                (
                    name.as_bytes(),
                    values.iter().map(Vec::as_slice).collect::<HashSet<_>>(),
                )
            })
            .collect();
        let dc = self.dc.clone();
        let names = attribute_names(
            attrs
                .iter()
                .map(|(name, _)| std::str::from_utf8(name).unwrap_or("?")),
        );
        let span = ldap_span!(
            "ldap.add",
            dc,
            ldap.dn = dn,
            ldap.attributes = names.as_str()
        );
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .add(dn, attrs);
        observed(span, &dc, "add", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        let mods: Vec<Mod<&[u8]>> = changes
            .iter()
            .map(|c| match c {
                Change::Replace(a, v) => Mod::Replace(a.as_bytes(), value_set(v)),
                Change::Add(a, v) => Mod::Add(a.as_bytes(), value_set(v)),
                Change::Delete(a, v) => Mod::Delete(a.as_bytes(), value_set(v)),
            })
            .collect();
        let dc = self.dc.clone();
        let names = attribute_names(changes.iter().map(|c| match c {
            Change::Replace(a, _) | Change::Add(a, _) | Change::Delete(a, _) => a.as_ref(),
        }));
        let span = ldap_span!(
            "ldap.modify",
            dc,
            ldap.dn = dn,
            ldap.attributes = names.as_str()
        );
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .modify(dn, mods);
        observed(span, &dc, "modify", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        let span = ldap_span!("ldap.delete", dc, ldap.dn = dn);
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .delete(dn);
        observed(span, &dc, "delete", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn unbind(mut self: Box<Self>) {
        let _ = self.ldap.unbind().await;
    }
}

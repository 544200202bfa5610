//! The user count of the `AADConnectProvisioningAgent` role (**LAB STAND-IN**).
//!
//! Microsoft's agent reads the users of the domains it serves and exports them to Entra ID;
//! the stand-in only counts them, so that the tenant emulator's cloud sync job has a number to
//! "import". On the first heartbeat, on every [`RECOUNT_EVERY`]th after a count, and on the
//! first that reports a domain not counted yet (`Add-AADCloudSyncADDomain` ran), for each
//! domain of `domains.json`, it runs a paged subtree search from the domain root
//! (`DC=lab,DC=example,DC=test` for `lab.example.test`) with [`USER_FILTER`] — Microsoft's
//! default scope: users, without critical system objects (Administrator, Guest, krbtgt) —
//! asking for no attribute (`1.1`), and counts the entries; search references (AD returns
//! them for the Configuration and DNS partitions) are skipped. Every heartbeat then carries the
//! last count as `domains[].userCount`; a domain that was never counted, or whose last count
//! failed, has none (unknown), and the agent's log (`log.rs`) says why, once per new reason.
//!
//! Where and as whom it reads: `HKLM\SOFTWARE\ProvdLab\Directory`, written by
//! `deploy/lab/wine.sh lab-directory URL CA_FILE BIND PASSWORD_FILE`, read again at every count
//! (no key: no count, one log line):
//!
//! | value | type | what |
//! |---|---|---|
//! | `Url` | REG_SZ | `ldaps://HOST[:PORT]`, or `ldap://HOST[:PORT]` with StartTLS |
//! | `CaPem` | REG_SZ or REG_MULTI_SZ (one line each), optional | the CA(s) the DC's certificate must chain to; without it, the Windows root store |
//! | `BindDn` | REG_SZ | a DN or a UPN for the simple bind |
//! | `Password` | REG_SZ | its password |
//!
//! **LAB shortcut: the reader account.** The real agent reads AD as its gMSA: the service logs
//! on as `DOMAIN\provAgentgMSA$` and Windows fetches the gMSA's password from a DC. Samba 4.17,
//! the lab's AD, computes no gMSA passwords (no `msDS-ManagedPassword`), so nothing can log on
//! as one there; the stand-in binds as an ordinary lab account instead (`provlabreader`, made
//! by `deploy/lab/lab.sh seed-users`) whose password the registry key holds in clear. Microsoft's
//! agent has nothing of the sort.
//!
//! TLS always: Samba refuses simple binds on a plain connection (`strongAuthRequired`, measured
//! in the lab), and a password must not travel in the clear anyway, hence StartTLS for
//! `ldap://`. The URL's host must be in the DC's certificate (the lab's carry their IPs).
//!
//! One connection per count, time-boxed ([`CONNECT_TIMEOUT`], [`OPERATION_TIMEOUT`] per
//! operation and per page). It runs on the heartbeat thread just before that beat's request:
//! a DC that does not answer delays one beat in ten, by seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConn, LdapConnSettings, Scope};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::log::Log;

/// The heartbeats from one count to the next (the first heartbeat counts, and so does one that
/// reports a new domain).
pub const RECOUNT_EVERY: u64 = 10;
/// What is counted: Microsoft's default for users, critical system objects left out.
pub const USER_FILTER: &str =
    "(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))";
/// The registry key, under HKLM.
pub const DIRECTORY_KEY: &str = r"SOFTWARE\ProvdLab\Directory";
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const PAGE_SIZE: i32 = 500;

/// Where and as whom to read. No `Debug`: it holds a password.
pub struct Directory {
    url: String,
    ca_pem: Option<String>,
    bind: String,
    password: String,
}

impl Directory {
    /// `HKLM\SOFTWARE\ProvdLab\Directory`, or why it cannot be used.
    #[cfg(windows)]
    pub fn from_registry() -> Result<Directory, String> {
        let value = |name: &str| registry::text(DIRECTORY_KEY, name);
        let missing =
            |name: &str| format!(r"no HKLM\{DIRECTORY_KEY} {name} (wine.sh lab-directory)");
        Ok(Directory {
            url: value("Url").ok_or_else(|| missing("Url"))?,
            ca_pem: value("CaPem").filter(|pem| !pem.trim().is_empty()),
            bind: value("BindDn").ok_or_else(|| missing("BindDn"))?,
            password: value("Password").ok_or_else(|| missing("Password"))?,
        })
    }

    /// The registry is Windows'; the unit tests on Linux build a [`Directory`] themselves.
    #[cfg(not(windows))]
    pub fn from_registry() -> Result<Directory, String> {
        Err("no registry on this platform".to_owned())
    }

    fn settings(&self) -> Result<LdapConnSettings, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT);
        let scheme = self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("ldaps") => {}
            Some("ldap") => settings = settings.set_starttls(true),
            _ => {
                return Err(format!(
                    "Url {:?} is neither ldaps:// nor ldap://",
                    self.url
                ));
            }
        }
        if let Some(pem) = &self.ca_pem {
            settings = settings.set_config(Arc::new(tls_config(pem)?));
        }
        Ok(settings)
    }

    /// The users under `domain`'s root, counted with a paged search.
    pub fn count_users(&self, domain: &str) -> Result<u64, String> {
        let base = domain_root(domain).ok_or_else(|| format!("{domain:?} is not a DNS name"))?;
        let url = &self.url;
        let mut ldap = LdapConn::with_settings(self.settings()?, url)
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        ldap.with_timeout(OPERATION_TIMEOUT)
            .simple_bind(&self.bind, &self.password)
            .and_then(|r| r.success())
            .map_err(|e| format!("bind to {url} as {} failed: {e}", self.bind))?;
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let failed = |e: ldap3::LdapError| format!("search of {base} on {url} failed: {e}");
        let mut count = 0;
        let mut stream = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .streaming_search_with(adapters, &base, Scope::Subtree, USER_FILTER, vec!["1.1"])
            .map_err(failed)?;
        // EntriesOnly: search references and intermediate messages are not handed out.
        while stream.next().map_err(failed)?.is_some() {
            count += 1;
        }
        stream.result().success().map_err(failed)?;
        let _ = ldap.unbind();
        Ok(count)
    }

    /// `URL as BIND`, for the log.
    fn describe(&self) -> String {
        format!("{} as {}", self.url, self.bind)
    }
}

/// A rustls client configuration trusting the CA certificates of `pem` only.
fn tls_config(pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("CaPem does not read: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("CaPem holds an unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CaPem holds no certificate".to_owned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `lab.example.test` → `DC=lab,DC=example,DC=test`; `None` unless a DNS name.
pub fn domain_root(domain: &str) -> Option<String> {
    let domain = domain.trim().trim_end_matches('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (domain.len() <= 253 && labels.iter().all(label_ok)).then(|| {
        labels
            .iter()
            .map(|l| format!("DC={l}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The last known count per domain, counted again every [`RECOUNT_EVERY`] heartbeats (at once
/// for a new domain).
pub struct UserCounts {
    source: fn() -> Result<Directory, String>,
    log: Log,
    /// Heartbeats until the next count (0: count at this one).
    until_count: u64,
    counts: BTreeMap<String, u64>,
    /// The last line logged per domain (a reason is logged once, not every count).
    logged: BTreeMap<String, String>,
    /// This beat counted, and the counts were not yet seen answered.
    fresh: bool,
    /// The counts last seen answered by the tenant (logged when they change).
    reported: BTreeMap<String, u64>,
}

impl UserCounts {
    pub fn new(source: fn() -> Result<Directory, String>, log: Log) -> UserCounts {
        UserCounts {
            source,
            log,
            until_count: 0,
            counts: BTreeMap::new(),
            logged: BTreeMap::new(),
            fresh: false,
            reported: BTreeMap::new(),
        }
    }

    /// For one heartbeat reporting `domains`: their counts, known ones only. Counts on the first
    /// call with domains, every [`RECOUNT_EVERY`]th after, and when a domain is new.
    pub fn for_beat(&mut self, domains: &[&str]) -> &BTreeMap<String, u64> {
        self.counts.retain(|d, _| domains.contains(&d.as_str()));
        self.logged.retain(|d, _| domains.contains(&d.as_str()));
        // A domain with no line logged was never counted.
        let new = domains.iter().any(|d| !self.logged.contains_key(*d));
        self.fresh = !domains.is_empty() && (self.until_count == 0 || new);
        if self.fresh {
            self.until_count = RECOUNT_EVERY;
            let directory = (self.source)();
            for &domain in domains {
                // A panic in the LDAP stack must not end the heartbeats: it is a failed count.
                let counted = directory.as_ref().map_err(Clone::clone).and_then(|d| {
                    std::panic::catch_unwind(|| d.count_users(domain))
                        .unwrap_or_else(|_| Err("the count panicked".to_owned()))
                        .map(|n| (n, format!("{} ({})", n, d.describe())))
                });
                let line = match counted {
                    Ok((n, line)) => {
                        self.counts.insert(domain.to_owned(), n);
                        format!("user count {domain}: {line}")
                    }
                    Err(reason) => {
                        self.counts.remove(domain);
                        format!("user count {domain}: unknown, no userCount sent: {reason}")
                    }
                };
                if self.logged.get(domain) != Some(&line) {
                    self.log.line(&line);
                    self.logged.insert(domain.to_owned(), line);
                }
            }
        }
        self.until_count = self.until_count.saturating_sub(1);
        &self.counts
    }

    /// After the heartbeat: `answered` when the tenant took it (2xx). The counts of a counting
    /// beat that the tenant took are logged when they differ from the last ones logged so.
    pub fn sent(&mut self, answered: bool) {
        if std::mem::take(&mut self.fresh) && answered && self.counts != self.reported {
            if !self.counts.is_empty() {
                let list: Vec<String> = self
                    .counts
                    .iter()
                    .map(|(d, n)| format!("{d}={n}"))
                    .collect();
                self.log.line(&format!(
                    "heartbeat with userCount {} answered 2xx by the tenant",
                    list.join(", ")
                ));
            }
            self.reported = self.counts.clone();
        }
    }
}

/// Reading the lab key (`RegGetValueW`): strings only.
#[cfg(windows)]
mod registry {
    #![allow(unsafe_code)]

    use std::ffi::OsString;
    use std::os::windows::ffi::{OsStrExt, OsStringExt};

    use windows_sys::Win32::System::Registry::{
        HKEY_LOCAL_MACHINE, RRF_RT_REG_MULTI_SZ, RRF_RT_REG_SZ, RegGetValueW,
    };

    /// `HKLM\key` `name`: a REG_SZ, or a REG_MULTI_SZ's strings joined by `\n`.
    pub fn text(key: &str, name: &str) -> Option<String> {
        let wide = |s: &str| -> Vec<u16> {
            std::ffi::OsStr::new(s)
                .encode_wide()
                .chain(std::iter::once(0))
                .collect()
        };
        let (key, name) = (wide(key), wide(name));
        // RegGetValueW into `buf` (null: only the size), `size` in bytes both ways.
        let get = |buf: *mut u16, size: &mut u32| {
            // SAFETY: NUL-terminated names that outlive the call; `buf` is null or writable
            // for `*size` bytes.
            unsafe {
                RegGetValueW(
                    HKEY_LOCAL_MACHINE,
                    key.as_ptr(),
                    name.as_ptr(),
                    RRF_RT_REG_SZ | RRF_RT_REG_MULTI_SZ,
                    std::ptr::null_mut(),
                    buf.cast(),
                    size,
                )
            }
        };
        let mut size = 0u32;
        if get(std::ptr::null_mut(), &mut size) != 0 {
            return None;
        }
        let mut buf = vec![0u16; (size as usize).div_ceil(2) + 1];
        let mut size = (buf.len() * 2) as u32;
        if get(buf.as_mut_ptr(), &mut size) != 0 {
            return None;
        }
        buf.truncate(size as usize / 2);
        // A REG_SZ ends in one NUL, a REG_MULTI_SZ separates its strings with one: lines.
        let strings: Vec<String> = buf
            .split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| OsString::from_wide(s).to_string_lossy().into_owned())
            .collect();
        Some(strings.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_roots() {
        assert_eq!(
            domain_root("lab.example.test").as_deref(),
            Some("DC=lab,DC=example,DC=test")
        );
        assert_eq!(domain_root("Lab.Test.").as_deref(), Some("DC=Lab,DC=Test"));
        assert_eq!(domain_root("a,DC=x"), None);
        assert_eq!(domain_root("a..b"), None);
        assert_eq!(domain_root(""), None);
    }

    #[test]
    fn urls_and_cas_are_checked() {
        let directory = |url: &str, ca: Option<&str>| Directory {
            url: url.into(),
            ca_pem: ca.map(Into::into),
            bind: "reader@lab.example.test".into(),
            password: "x".into(),
        };
        let err = |d: Directory| d.settings().err();
        assert!(
            err(directory("http://dc1", None))
                .unwrap()
                .contains("neither")
        );
        assert!(err(directory("ldaps://dc1", None)).is_none());
        assert!(err(directory("LDAP://dc1:389", None)).is_none());
        assert_eq!(
            err(directory("ldaps://dc1", Some("not a pem"))).as_deref(),
            Some("CaPem holds no certificate")
        );
    }

    #[test]
    fn counts_first_and_every_tenth_beat_and_forget_on_failure() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        // A source that fails: the count stays unknown, and is asked again 10 beats later.
        fn failing() -> Result<Directory, String> {
            CALLS.fetch_add(1, Ordering::SeqCst);
            Err("no key".to_owned())
        }
        let mut users = UserCounts::new(failing, Log::none());
        users.counts.insert("lab.example.test".into(), 26);
        users.counts.insert("gone.test".into(), 3);
        for beat in 0..21 {
            let counts = users.for_beat(&["lab.example.test"]);
            assert!(counts.is_empty(), "beat {beat}: {counts:?}");
            users.sent(true);
        }
        assert_eq!(CALLS.load(Ordering::SeqCst), 3); // beats 0, 10, 20
        // No domains: nothing to count, until one appears (counted at once), and another.
        let mut later = UserCounts::new(failing, Log::none());
        for _ in 0..3 {
            assert!(later.for_beat(&[]).is_empty());
        }
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        later.for_beat(&["a.test"]);
        assert_eq!(CALLS.load(Ordering::SeqCst), 4);
        later.for_beat(&["a.test"]);
        assert_eq!(CALLS.load(Ordering::SeqCst), 4);
        later.for_beat(&["a.test", "b.test"]);
        assert_eq!(CALLS.load(Ordering::SeqCst), 5);
    }

    /// Against the Samba lab (`deploy/lab/lab.sh up`, `eval "$(deploy/lab/lab.sh env)"`), as
    /// the reader, over LDAPS with the lab CA and over StartTLS; a wrong password is refused.
    #[test]
    #[ignore = "needs the Samba lab and its LAB_* environment"]
    fn counts_the_lab_users() {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
        let ca = std::fs::read_to_string(var("LAB_CA_PEM")).unwrap();
        let ip = var("LAB_DC1_IP");
        let directory = |url: String, password: String| Directory {
            url,
            ca_pem: Some(ca.clone()),
            bind: var("LAB_READER_UPN"),
            password,
        };
        let want: u64 = var("LAB_USER_COUNT").parse().unwrap();
        let password = var("LAB_READER_PASSWORD");
        let ldaps = directory(format!("ldaps://{ip}"), password.clone());
        let n = ldaps.count_users(&var("LAB_DOMAIN")).unwrap();
        assert!(n >= want, "{n} < {want}");
        let starttls = directory(format!("ldap://{ip}"), password);
        assert_eq!(starttls.count_users(&var("LAB_DOMAIN")).unwrap(), n);
        let wrong = directory(format!("ldaps://{ip}"), "wrong".into());
        let err = wrong.count_users(&var("LAB_DOMAIN")).unwrap_err();
        assert!(err.contains("bind to"), "{err}");
        let elsewhere = ldaps.count_users("other.test").unwrap_err();
        assert!(
            elsewhere.contains("search of DC=other,DC=test"),
            "{elsewhere}"
        );
    }
}

//! The hosts of a fleet: the inventory file (TOML: `[defaults]`, then
//! `[[hosts]]`), and the fan-out every fleet read shares — one task per
//! host on provctl's one runtime thread, at most `concurrency` at once,
//! one connection each.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::connect::{Settings, normalize_endpoint};

/// The inventory file: defaults, then one entry per host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    defaults: HostFields,
    hosts: Vec<HostEntry>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFields {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: String,
    endpoint: String,
    #[serde(default)]
    canary: bool,
    #[serde(flatten)]
    fields: HostFields,
}

/// A host ready to connect to.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub settings: Settings,
    pub canary: bool,
}

/// Reads an inventory (TOML); relative paths are relative to the file.
pub fn load_inventory(path: &Path, trace: bool) -> anyhow::Result<Vec<Host>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the inventory {}", path.display()))?;
    let file: InventoryFile =
        toml::from_str(&text).with_context(|| format!("inventory {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    let mut hosts = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, entry) in file.hosts.into_iter().enumerate() {
        if !names.insert(entry.name.clone()) {
            bail!(
                "inventory hosts[{i}]: the name {:?} is used twice",
                entry.name
            );
        }
        let pick = |own: Option<PathBuf>, default: Option<PathBuf>, what: &str| {
            own.or(default)
                .map(rel)
                .with_context(|| format!("inventory host {:?}: no {what}", entry.name))
        };
        hosts.push(Host {
            settings: Settings {
                // A bare `host:port` as `--endpoint` takes it.
                endpoint: normalize_endpoint(&entry.endpoint)
                    .with_context(|| format!("inventory host {:?}", entry.name))?,
                ca: pick(entry.fields.ca.clone(), file.defaults.ca.clone(), "ca")?,
                cert: pick(
                    entry.fields.cert.clone(),
                    file.defaults.cert.clone(),
                    "cert",
                )?,
                key: pick(entry.fields.key.clone(), file.defaults.key.clone(), "key")?,
                server_name: entry
                    .fields
                    .server_name
                    .clone()
                    .or_else(|| file.defaults.server_name.clone()),
                trace,
            },
            name: entry.name,
            canary: entry.canary,
        });
    }
    if hosts.is_empty() {
        bail!("inventory {}: no hosts", path.display());
    }
    Ok(hosts)
}

/// Runs `each` for every host, at most `concurrency` at once (tokio tasks,
/// no threads); the rows sorted by `key` (the host's name).
pub async fn fan_out<R, F, Fut>(
    hosts: Vec<Host>,
    concurrency: usize,
    each: F,
    key: fn(&R) -> &str,
) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(Host) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts {
        let semaphore = semaphore.clone();
        let work = each(host);
        tasks.spawn(async move {
            // Never closed: a permit always comes.
            let _permit = semaphore.acquire_owned().await;
            work.await
        });
    }
    let mut rows = Vec::new();
    while let Some(Ok(row)) = tasks.join_next().await {
        rows.push(row);
    }
    rows.sort_by(|a, b| key(a).cmp(key(b)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventories_take_defaults_and_name_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.toml");
        std::fs::write(
            &path,
            r#"
[defaults]
ca = "pki/ca.pem"
cert = "pki/client-admin.pem"
key = "pki/client-admin.key"

[[hosts]]
name = "a"
endpoint = "https://a.example:8443"

[[hosts]]
name = "b"
endpoint = "https://b.example:8443"
canary = true
cert = "/elsewhere/b.pem"
"#,
        )
        .unwrap();
        let hosts = load_inventory(&path, false).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].settings.ca, dir.path().join("pki/ca.pem"));
        assert_eq!(hosts[1].settings.cert, PathBuf::from("/elsewhere/b.pem"));
        assert!(hosts[1].canary);

        std::fs::write(
            &path,
            "[[hosts]]\nname = \"a\"\nendpoint = \"https://a:1\"\n",
        )
        .unwrap();
        let err = format!("{:#}", load_inventory(&path, false).unwrap_err());
        assert!(err.contains("no ca"), "{err}");

        // A bare host:port is https, as for --endpoint; another scheme is not.
        let bare =
            "[defaults]\nca = 'ca'\ncert = 'c'\nkey = 'k'\n[[hosts]]\nname = \"a\"\nendpoint = ";
        std::fs::write(&path, format!("{bare}\"a.example:1\"\n")).unwrap();
        let hosts = load_inventory(&path, false).unwrap();
        assert_eq!(hosts[0].settings.endpoint, "https://a.example:1");
        std::fs::write(&path, format!("{bare}\"http://a.example:1\"\n")).unwrap();
        let err = format!("{:#}", load_inventory(&path, false).unwrap_err());
        assert!(
            err.contains("inventory host \"a\"") && err.contains("https only"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_fan_out_bounds_concurrency_and_sorts() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hosts: Vec<Host> = ["c", "a", "b", "d", "e"]
            .iter()
            .map(|name| Host {
                name: (*name).to_owned(),
                canary: false,
                settings: Settings {
                    endpoint: String::new(),
                    ca: PathBuf::new(),
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                    server_name: None,
                    trace: false,
                },
            })
            .collect();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let rows = fan_out(
            hosts,
            2,
            |host| {
                let (now, most) = (now.clone(), most.clone());
                async move {
                    let at = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    host.name
                }
            },
            String::as_str,
        )
        .await;
        assert_eq!(rows, ["a", "b", "c", "d", "e"]);
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}

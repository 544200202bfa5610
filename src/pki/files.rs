//! `provd pki init` and `provd pki issue`: certificates and keys written as
//! PEM files, atomically, keys with mode 0600, never over existing files
//! unless forced.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::issue::validate_common_name;
use super::{Ca, PkiError, Role};

/// Upper bound for the `name` of `provd pki issue` (it becomes a file name).
const MAX_FILE_STEM_LEN: usize = 200;

/// Common Name of the CA created by [`init`].
const INIT_CA_COMMON_NAME: &str = "provd CA";

const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";

/// Options for `provd pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
    /// DNS names for the server certificate.
    pub server_dns: Vec<String>,
    /// IP addresses for the server certificate.
    pub server_ips: Vec<IpAddr>,
    /// Validity of the CA and of every issued certificate.
    pub validity: Duration,
    /// Overwrite existing files.
    pub force: bool,
}

/// `provd pki init DIR`: creates a CA, a server certificate and one client
/// certificate per role (CN = the role name), writing `ca.pem`, `ca.key`,
/// `server.pem`, `server.key`, `client-<role>.pem` and `client-<role>.key`
/// into `opts.dir`. Private keys are written with mode 0600 on unix.
///
/// Refuses to overwrite existing files (starting with `ca.key`) unless
/// `opts.force`. Returns the files written.
pub fn init(opts: &InitOptions) -> Result<Vec<PathBuf>, PkiError> {
    if opts.server_dns.is_empty() && opts.server_ips.is_empty() {
        return Err(PkiError::NoServerNames);
    }
    let dir = &opts.dir;

    // Key before certificate for each pair, so a watcher reloading on
    // certificate changes sees the matching key already in place.
    let mut names = vec![
        CA_KEY_FILE.to_owned(),
        CA_CERT_FILE.to_owned(),
        "server.key".to_owned(),
        "server.pem".to_owned(),
    ];
    for role in Role::ALL {
        names.push(format!("client-{role}.key"));
        names.push(format!("client-{role}.pem"));
    }
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if !opts.force {
        refuse_existing(&paths)?;
    }

    let ca = Ca::generate(INIT_CA_COMMON_NAME, opts.validity)?;
    let server = ca.issue_server(&opts.server_dns, &opts.server_ips, opts.validity)?;
    let mut contents = vec![
        (ca.key_pem(), true),
        (ca.cert_pem(), false),
        (server.key_pem, true),
        (server.cert_pem, false),
    ];
    for role in Role::ALL {
        let client = ca.issue_client(role.as_str(), &[role], opts.validity)?;
        contents.push((client.key_pem, true));
        contents.push((client.cert_pem, false));
    }

    create_dir(dir)?;
    for (path, (content, private)) in paths.iter().zip(&contents) {
        write_atomic(path, content, *private)?;
    }
    Ok(paths)
}

/// What `provd pki issue` should issue.
#[derive(Debug, Clone)]
pub enum IssueKind {
    /// A server certificate for these names (CN = the first one).
    Server {
        /// DNS names.
        dns_names: Vec<String>,
        /// IP addresses.
        ips: Vec<IpAddr>,
    },
    /// A client certificate (CN = the issue name) with these roles.
    Client {
        /// Roles to grant.
        roles: Vec<Role>,
    },
}

/// Options for `provd pki issue`.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    /// Directory holding `ca.pem` and `ca.key`.
    pub ca_dir: PathBuf,
    /// Directory to write `<name>.pem` and `<name>.key` into (created if missing).
    pub out_dir: PathBuf,
    /// File name stem; also the client's Common Name for client certificates.
    pub name: String,
    /// Server or client certificate.
    pub kind: IssueKind,
    /// Validity from now.
    pub validity: Duration,
    /// Overwrite existing output files.
    pub force: bool,
}

/// `provd pki issue`: loads `ca.pem`/`ca.key` from `opts.ca_dir` and writes
/// `<out_dir>/<name>.key` (mode 0600 on unix) and `<out_dir>/<name>.pem`.
/// Returns the files written.
pub fn issue(opts: &IssueOptions) -> Result<Vec<PathBuf>, PkiError> {
    validate_file_stem(&opts.name)?;
    match &opts.kind {
        IssueKind::Client { roles } => {
            validate_common_name("client name", &opts.name)?;
            if roles.is_empty() {
                return Err(PkiError::NoRoles {
                    common_name: opts.name.clone(),
                });
            }
        }
        IssueKind::Server { dns_names, ips } => {
            if dns_names.is_empty() && ips.is_empty() {
                return Err(PkiError::NoServerNames);
            }
        }
    }

    let key_path = opts.out_dir.join(format!("{}.key", opts.name));
    let cert_path = opts.out_dir.join(format!("{}.pem", opts.name));
    let paths = vec![key_path, cert_path];
    if !opts.force {
        refuse_existing(&paths)?;
    }

    let ca = load_ca(&opts.ca_dir)?;

    let pair = match &opts.kind {
        IssueKind::Client { roles } => ca.issue_client(&opts.name, roles, opts.validity)?,
        IssueKind::Server { dns_names, ips } => ca.issue_server(dns_names, ips, opts.validity)?,
    };

    create_dir(&opts.out_dir)?;
    write_atomic(&paths[0], &pair.key_pem, true)?;
    write_atomic(&paths[1], &pair.cert_pem, false)?;
    Ok(paths)
}

/// Loads the CA from `ca_dir`'s `ca.pem` (a bundle is fine) and `ca.key`.
pub(super) fn load_ca(ca_dir: &Path) -> Result<Ca, PkiError> {
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_cert = read_to_string(&ca_cert_path)?;
    let ca_key = zeroize::Zeroizing::new(read_to_string(&ca_key_path)?);
    Ca::from_pem_described(
        &ca_cert,
        &ca_key,
        &format!("CA certificate {}", ca_cert_path.display()),
        &format!("CA private key {}", ca_key_path.display()),
    )
}

/// The `name` of `provd pki issue` becomes `<name>.pem`/`<name>.key`.
fn validate_file_stem(name: &str) -> Result<(), PkiError> {
    let reject = |reason| {
        Err(PkiError::InvalidName {
            what: "certificate name",
            value: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty");
    }
    if name.contains(['/', '\\']) {
        return reject("must not contain path separators");
    }
    if name.contains("..") {
        return reject("must not contain '..'");
    }
    if name.starts_with('.') {
        return reject("must not start with '.'");
    }
    if name.chars().any(char::is_control) {
        return reject("must not contain control characters");
    }
    if name.len() > MAX_FILE_STEM_LEN {
        return reject("is too long");
    }
    if name == "ca" {
        return reject("is reserved for the CA's own ca.pem/ca.key");
    }
    Ok(())
}

fn refuse_existing(paths: &[PathBuf]) -> Result<(), PkiError> {
    for path in paths {
        match fs::symlink_metadata(path) {
            Ok(_) => return Err(PkiError::AlreadyExists { path: path.clone() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(PkiError::Io {
                    action: "check",
                    path: path.clone(),
                    error,
                });
            }
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))
}

pub(super) fn read_to_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err("read", path))
}

/// Writes `contents` to a temporary file next to `path` (mode 0600 for
/// private keys, 0644 otherwise, on unix) and renames it over `path`, so a
/// reader never sees a partially written file.
fn write_atomic(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    write_atomic_as(path, contents, Like::new(private))
}

/// [`write_atomic`] for a file that replaces one in use (`provd pki renew`,
/// `provd pki crl`): the new file keeps the old one's mode — never more
/// than 0640 for a private key, 0644 otherwise — and, where this process
/// may (root), its owner and group, so a daemon running as another user
/// still reads it. On Windows the new file takes its directory's
/// inherited ACL.
pub(super) fn replace_atomic(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let like = match fs::metadata(path) {
        Ok(old) => Like::of(&old, private),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Like::new(private),
        Err(error) => {
            return Err(PkiError::Io {
                action: "read the permissions of",
                path: path.to_owned(),
                error,
            });
        }
    };
    write_atomic_as(path, contents, like)
}

/// The permissions a written file gets.
#[derive(Debug, Clone, Copy)]
struct Like {
    #[cfg_attr(not(unix), allow(dead_code))]
    mode: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    owner: Option<(u32, u32)>,
}

impl Like {
    fn new(private: bool) -> Like {
        Like {
            mode: if private { 0o600 } else { 0o644 },
            owner: None,
        }
    }

    #[cfg(unix)]
    fn of(old: &fs::Metadata, private: bool) -> Like {
        use std::os::unix::fs::MetadataExt;
        let most = if private { 0o640 } else { 0o644 };
        Like {
            mode: old.mode() & most,
            owner: Some((old.uid(), old.gid())),
        }
    }

    #[cfg(not(unix))]
    fn of(_old: &fs::Metadata, private: bool) -> Like {
        Like::new(private)
    }
}

fn write_atomic_as(path: &Path, contents: &str, like: Like) -> Result<(), PkiError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));

    // A leftover from an interrupted run with the same pid; create_new below
    // would otherwise fail.
    let _ = fs::remove_file(&tmp);

    let result = (|| {
        let mut file = open_new(&tmp, like).map_err(io_err("create", &tmp))?;
        set_owner(&file, like);
        file.write_all(contents.as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("replace", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PkiError {
    move |error| PkiError::Io {
        action,
        path: path.to_owned(),
        error,
    }
}

fn open_new(path: &Path, like: Like) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(like.mode);
    }
    #[cfg(not(unix))]
    let _ = like;
    let file = options.open(path)?;
    // A replacement keeps the old file's mode, which the umask may have
    // narrowed (a group's read); a new file keeps what the umask left.
    #[cfg(unix)]
    if like.owner.is_some() {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(like.mode))?;
    }
    Ok(file)
}

/// Gives the new file the old one's owner and group, before anything
/// secret is written to it. Only root may, and only a change is tried: a
/// user renewing their own files keeps them.
fn set_owner(file: &fs::File, like: Like) {
    #[cfg(unix)]
    if let Some((uid, gid)) = like.owner {
        use std::os::unix::fs::MetadataExt;
        let differs = file
            .metadata()
            .map(|m| m.uid() != uid || m.gid() != gid)
            .unwrap_or(false);
        if differs {
            // Not allowed (not root): the file stays this user's, mode
            // unchanged, which is still private.
            let _ = std::os::unix::fs::fchown(file, Some(uid), Some(gid));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, like);
}

#[cfg(test)]
mod tests {
    use super::super::identity_from_der;
    use super::super::tests::{DAY, assert_chains, pem_to_der};
    use super::*;

    #[test]
    fn bad_file_names_rejected() {
        for bad in [
            "", "../evil", "a/b", "a\\b", "..", ".", ".hidden", "ca", "a\0b",
        ] {
            let err = validate_file_stem(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("certificate name"), "{bad:?}: {msg}");
        }
        validate_file_stem("alice").unwrap();
        validate_file_stem("provd.example.test").unwrap();
    }

    fn init_opts(dir: &Path, force: bool) -> InitOptions {
        InitOptions {
            dir: dir.to_owned(),
            server_dns: vec!["provd.example.test".to_owned()],
            server_ips: vec!["127.0.0.1".parse().unwrap()],
            validity: DAY,
            force,
        }
    }

    #[test]
    fn init_writes_files_and_refuses_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let written = init(&init_opts(&dir, false)).unwrap();

        let mut expected: Vec<String> = [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "client-viewer.pem",
            "client-viewer.key",
            "client-operator.pem",
            "client-operator.key",
            "client-admin.pem",
            "client-admin.key",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut got: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        // Nothing else (no leftover temporary files).
        assert_eq!(fs::read_dir(&dir).unwrap().count(), expected.len());

        #[cfg(unix)]
        for path in &written {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            if path.extension().unwrap() == "key" {
                assert_eq!(mode, 0o600, "{}", path.display());
            } else {
                assert_eq!(mode & 0o077 & !0o044, 0, "{}", path.display());
            }
        }

        let ca_pem = fs::read_to_string(dir.join("ca.pem")).unwrap();
        let ca_key = fs::read_to_string(dir.join("ca.key")).unwrap();
        Ca::from_pem(&ca_pem, &ca_key).unwrap();
        for role in Role::ALL {
            let pem = fs::read_to_string(dir.join(format!("client-{role}.pem"))).unwrap();
            let der = pem_to_der(&pem);
            assert_chains(&der, &ca_pem);
            assert_eq!(
                identity_from_der(&der).unwrap(),
                (role.as_str().to_owned(), vec![role])
            );
        }
        let server_der = pem_to_der(&fs::read_to_string(dir.join("server.pem")).unwrap());
        assert_chains(&server_der, &ca_pem);

        // Second run without force: refused, naming ca.key, nothing changed.
        let err = init(&init_opts(&dir, false)).unwrap_err();
        match &err {
            PkiError::AlreadyExists { path } => assert_eq!(path, &dir.join("ca.key")),
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("ca.key"));
        assert_eq!(fs::read_to_string(dir.join("ca.key")).unwrap(), ca_key);

        // With force: new CA.
        init(&init_opts(&dir, true)).unwrap();
        assert_ne!(fs::read_to_string(dir.join("ca.key")).unwrap(), ca_key);

        let mut no_names = init_opts(&tmp.path().join("other"), false);
        no_names.server_dns.clear();
        no_names.server_ips.clear();
        assert!(matches!(init(&no_names), Err(PkiError::NoServerNames)));
    }

    #[test]
    fn issue_from_ca_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let ca_dir = tmp.path().join("ca");
        init(&init_opts(&ca_dir, false)).unwrap();
        let ca_pem = fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
        let out_dir = tmp.path().join("out");

        let client = IssueOptions {
            ca_dir: ca_dir.clone(),
            out_dir: out_dir.clone(),
            name: "alice".to_owned(),
            kind: IssueKind::Client {
                roles: vec![Role::Operator],
            },
            validity: DAY,
            force: false,
        };
        let written = issue(&client).unwrap();
        assert_eq!(
            written,
            vec![out_dir.join("alice.key"), out_dir.join("alice.pem")]
        );
        let der = pem_to_der(&fs::read_to_string(out_dir.join("alice.pem")).unwrap());
        assert_chains(&der, &ca_pem);
        assert_eq!(
            identity_from_der(&der).unwrap(),
            ("alice".to_owned(), vec![Role::Operator])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(out_dir.join("alice.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let err = issue(&client).unwrap_err();
        assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err}");
        issue(&IssueOptions {
            force: true,
            ..client.clone()
        })
        .unwrap();

        let server = IssueOptions {
            name: "server2".to_owned(),
            kind: IssueKind::Server {
                dns_names: vec!["provd2.example.test".to_owned()],
                ips: vec![],
            },
            ..client.clone()
        };
        issue(&server).unwrap();
        let der = pem_to_der(&fs::read_to_string(out_dir.join("server2.pem")).unwrap());
        assert_chains(&der, &ca_pem);

        for (name, kind) in [
            ("../alice", client.kind.clone()),
            ("a/b", client.kind.clone()),
            ("", client.kind.clone()),
            ("ca", client.kind.clone()),
            ("nobody", IssueKind::Client { roles: vec![] }),
            (
                "nothing",
                IssueKind::Server {
                    dns_names: vec![],
                    ips: vec![],
                },
            ),
        ] {
            let opts = IssueOptions {
                name: name.to_owned(),
                kind,
                ..client.clone()
            };
            assert!(issue(&opts).is_err(), "{name:?} accepted");
        }

        let missing = IssueOptions {
            ca_dir: tmp.path().join("nope"),
            name: "frank".to_owned(),
            ..client.clone()
        };
        let err = issue(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}

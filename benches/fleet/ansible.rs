//! The same rollout through the project's Ansible collection: one inventory
//! host per daemon, `provd.agent.provd_apply` with the same document,
//! `forks` = N, no throttle, and no `serial` (every host at once) or, with
//! `canary`, `serial: [1, "100%"]` (provctl's canary-then-wave). Needs the
//! Python venv `deploy/clients/test.sh` makes (`PROVD_PY_VENV`, default
//! /var/tmp/provd-py-venv) with ansible-core and provd-client in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::procs::{Usage, watch};

pub fn venv() -> Option<PathBuf> {
    let venv = PathBuf::from(
        std::env::var("PROVD_PY_VENV").unwrap_or_else(|_| "/var/tmp/provd-py-venv".into()),
    );
    venv.join("bin/ansible-playbook").exists().then_some(venv)
}

/// Runs the rollout of `document` to the daemons on `ports`.
pub fn run(
    canary: bool,
    venv: &Path,
    dir: &Path,
    pki: &Path,
    ports: &[u16],
    document: &Path,
    lab: &super::Lab,
) -> Usage {
    let n = ports.len();
    let mut inventory = String::from("all:\n  children:\n    provd_agents:\n      hosts:\n");
    for (i, port) in ports.iter().enumerate() {
        inventory.push_str(&format!("        h{i:03}:\n          provd_port: {port}\n"));
    }
    inventory.push_str(&format!(
        "      vars:\n        ansible_connection: local\n        \
         ansible_python_interpreter: \"{python}\"\n",
        python = venv.join("bin/python").display()
    ));
    let inventory_path = dir.join(format!("ansible-inventory-{n}.yml"));
    std::fs::write(&inventory_path, inventory).unwrap();
    let playbook = format!(
        "- hosts: provd_agents\n  gather_facts: false\n{serial}  \
         max_fail_percentage: 0\n  tasks:\n    - provd.agent.provd_apply:\n        \
         endpoint: \"localhost:{{{{ provd_port }}}}\"\n        ca: \"{pki}/ca.pem\"\n        \
         cert: \"{pki}/client-admin.pem\"\n        key: \"{pki}/client-admin.key\"\n        \
         document: \"{document}\"\n        username: \"{admin}\"\n        \
         password: \"{{{{ lookup('ansible.builtin.env', 'PROVD_BENCH_PASSWORD') }}}}\"\n",
        serial = if canary {
            "  serial: [1, \"100%\"]\n"
        } else {
            ""
        },
        pki = pki.display(),
        document = document.display(),
        admin = lab.admin,
    );
    let playbook_path = dir.join("ansible-rollout.yml");
    std::fs::write(&playbook_path, playbook).unwrap();
    let collections = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ansible/collections");
    let home = dir.join("ansible-home");
    std::fs::write(dir.join("ansible.cfg"), "[defaults]\n").unwrap();
    let child = Command::new(venv.join("bin/ansible-playbook"))
        .arg("-i")
        .arg(&inventory_path)
        .arg(&playbook_path)
        .args(["--forks", &n.to_string()])
        .env("ANSIBLE_COLLECTIONS_PATH", collections)
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("PROVD_BENCH_PASSWORD", &lab.password)
        .env(
            "PATH",
            format!(
                "{}:{}",
                venv.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ansible-playbook");
    watch(child)
}

//! The fake's starting state, from the fixture captured on the Samba lab.

use std::collections::BTreeMap;

use super::tree::{Fixture, Obj, SAMBA_FIXTURE, Tree, norm};
use super::{ADMIN_PASSWORD, DcState, State};
use provd_sd::Sid;

pub fn load() -> State {
    // The fixture is part of the crate; a broken one is a build defect.
    let fixture: Fixture = match serde_json::from_str(SAMBA_FIXTURE) {
        Ok(f) => f,
        Err(e) => panic!("tests/data/samba-lab-domain.json: {e}"),
    };
    let domain_sid: Sid = fixture
        .domain_sid
        .parse()
        .unwrap_or_else(|e| panic!("fixture domain SID: {e}"));
    let mut tree = Tree::default();
    for e in &fixture.entries {
        tree.insert(e.to_obj());
    }
    let rootdse: BTreeMap<String, Obj> = fixture
        .rootdse
        .iter()
        .map(|(host, e)| (host.to_ascii_lowercase(), e.to_obj()))
        .collect();
    let mut ncs: Vec<String> = rootdse
        .values()
        .flat_map(|r| r.get("namingContexts").to_vec())
        .map(|v| norm(&String::from_utf8_lossy(&v)))
        .collect();
    ncs.sort_by_key(|n| std::cmp::Reverse(n.len()));
    ncs.dedup();
    tree.naming_contexts = ncs;
    let base_dn = rootdse
        .values()
        .find_map(|r| r.text("defaultNamingContext"))
        .unwrap_or_default();
    let next_rid = tree
        .objects
        .values()
        .filter_map(|o| o.get("objectSid").first().cloned())
        .filter_map(|b| Sid::from_bytes(&b).ok())
        .filter_map(|s| s.rid_in(&domain_sid))
        .max()
        .unwrap_or(1000)
        .max(1000)
        + 100;
    let dcs = fixture
        .dcs
        .iter()
        .map(|d| DcState {
            host: d.host.to_ascii_lowercase(),
            ip: d
                .ip
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            reachable: true,
            refuse_bind: false,
            budget: None,
        })
        .collect();
    State {
        tree,
        domain: fixture.domain.to_ascii_lowercase(),
        netbios: fixture.netbios,
        domain_sid,
        base_dn,
        rootdse,
        dcs,
        passwords: BTreeMap::from([("administrator".to_owned(), ADMIN_PASSWORD.to_owned())]),
        next_rid,
        usn: 5000,
        denied: Vec::new(),
        constraints: Vec::new(),
        raced: Vec::new(),
        undone: Vec::new(),
        writes: Vec::new(),
        connects: Vec::new(),
        searched: Vec::new(),
        unreplicated: Vec::new(),
        managed_passwords: BTreeMap::new(),
        kerberos: BTreeMap::new(),
    }
}

/// What `Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-10))` makes,
/// containers included (a fresh Samba has neither).
pub fn add_kds_key(s: &mut State) {
    let config = format!("CN=Configuration,{}", s.base_dn);
    let gkds = format!("CN=Group Key Distribution Service,CN=Services,{config}");
    let keys = format!("CN=Master Root Keys,{gkds}");
    let text = |v: &str| vec![v.as_bytes().to_vec()];
    let logged = s.writes.len();
    for dn in [&gkds, &keys] {
        if s.tree.get(dn).is_none() {
            let _ = s.add("fixture", dn, &[("objectClass", text("container"))]);
        }
    }
    let filetime = super::ops::filetime_now();
    let id = uuid::Uuid::new_v4().to_string();
    let _ = s.add(
        "fixture",
        &format!("CN={id},{keys}"),
        &[
            ("objectClass", text("msKds-ProvRootKey")),
            ("cn", text(&id)),
            ("msKds-Version", text("1")),
            ("msKds-KDFAlgorithmID", text("SP800_108_CTR_HMAC")),
            ("msKds-SecretAgreementAlgorithmID", text("DH")),
            ("msKds-PrivateKeyLength", text("512")),
            ("msKds-PublicKeyLength", text("2048")),
            ("msKds-RootKeyData", vec![vec![7u8; 64]]),
            ("msKds-CreateTime", text(&filetime.to_string())),
            (
                "msKds-UseStartTime",
                text(&(filetime - 36_000 * 10_000_000).to_string()),
            ),
            (
                "msKds-DomainID",
                text(&format!("CN=DC1,OU=Domain Controllers,{}", s.base_dn)),
            ),
        ],
    );
    // Fixture writes are not the workflows' writes.
    s.writes.truncate(logged);
}

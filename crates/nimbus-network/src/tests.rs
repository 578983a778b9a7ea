//! The service's operations on both engines (`network.db`, and a throwaway PostgreSQL
//! database per test when `NIMBUS_TEST_POSTGRES` names a server), and nodes sharing one
//! database, each following the others' networks within a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_store::pg::testing::fresh_database;

use crate::store::{NetworkStore, Peer, Tag};
use crate::*;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// Where a test's networks are kept, as many restarts as it likes: a `network.db` in a
/// directory, or a PostgreSQL database.
enum Place {
    File(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    fn file() -> Place {
        Place::File(tempfile::tempdir().unwrap())
    }

    /// A server's network service (started again when called again) over these records.
    async fn service(&self) -> Arc<NetworkService> {
        match self {
            Place::File(dir) => NetworkService::open(&dir.path().join("network.db"), REGION, ACCOUNT).await.unwrap(),
            Place::Postgres(url) => NetworkService::open_shared(url, REGION, ACCOUNT).await.unwrap(),
        }
    }
}

/// Each behaviour test runs on both engines: `sqlite::name` and `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Place::file()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = super::fresh_database().await else { return };
                    super::$name(super::Place::Postgres(url)).await
                }
            )*
        }
    };
}

on_both_engines!(
    vpcs_have_aws_ids_and_a_default_group,
    vpc_errors,
    subnets_fit_their_vpc_and_do_not_overlap,
    security_groups_and_their_rules,
    what_a_function_uses_is_not_deleted_and_rule_changes_are_announced,
    everything_survives_a_restart,
);

#[tokio::test]
async fn an_in_memory_store_serves_too() {
    let svc = NetworkService::with_store(NetworkStore::open_in_memory().unwrap(), REGION, ACCOUNT).await.unwrap();
    let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    assert_eq!(svc.vpc(&vpc).unwrap().cidr.to_string(), "10.0.0.0/16");
}

fn tag_spec(kind: &str, key: &str, value: &str) -> Vec<TagSpecification> {
    vec![TagSpecification { resource_type: Some(kind.into()), tags: vec![Tag { key: key.into(), value: value.into() }] }]
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter { name: Some(name.into()), values: values.iter().map(|v| v.to_string()).collect() }
}

fn tcp(port: i64, cidr: &str) -> PermissionInput {
    PermissionInput {
        ip_protocol: Some("tcp".into()),
        from_port: Some(port),
        to_port: Some(port),
        ip_ranges: vec![IpRange { cidr_ip: Some(cidr.into()), description: None }],
        ..Default::default()
    }
}

fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).and_then(|h| h.strip_prefix('-')).is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

struct Users(Vec<String>);

#[async_trait::async_trait]
impl Attachments for Users {
    async fn users(&self, id: &str) -> Vec<String> {
        if self.0.iter().any(|u| u == id) {
            vec!["arn:aws:lambda:us-east-1:123456789012:function:f".into()]
        } else {
            Vec::new()
        }
    }
}

async fn vpcs_have_aws_ids_and_a_default_group(place: Place) {
    let svc = place.service().await;
    let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), tag_spec("vpc", "Name", "main")).await.unwrap();
    assert!(is_id(&vpc.vpc_id, "vpc"), "{}", vpc.vpc_id);
    assert_eq!((vpc.state, vpc.cidr_block.as_str(), vpc.is_default), ("pending", "10.0.0.0/16", false));
    assert!(is_id(&vpc.cidr_block_association_set[0].association_id, "vpc-cidr-assoc"));
    let all = svc.describe_vpcs(&[], &[]).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, "available");
    assert_eq!(svc.describe_vpcs(&[], &[filter("tag:Name", &["ma*"])]).unwrap().len(), 1);
    assert_eq!(svc.describe_vpcs(&[], &[filter("tag:Name", &["other"])]).unwrap().len(), 0);
    assert_eq!(svc.describe_vpcs(&[], &[filter("vpc-id", &[&vpc.vpc_id])]).unwrap().len(), 1);

    let groups = svc.describe_security_groups(&[], &[], &[filter("vpc-id", &[&vpc.vpc_id])]).unwrap();
    assert_eq!(groups.len(), 1);
    let default = &groups[0];
    assert_eq!((default.group_name.as_str(), default.description.as_str()), ("default", "default VPC security group"));
    assert_eq!(default.ip_permissions[0].user_id_group_pairs[0].group_id.as_deref(), Some(default.group_id.as_str()));
    assert_eq!(default.ip_permissions_egress[0].ip_protocol, "-1");
    assert_eq!(default.ip_permissions_egress[0].ip_ranges[0].cidr_ip.as_deref(), Some("0.0.0.0/0"));
    let e = svc.delete_security_group(Some(default.group_id.clone()), None).await.unwrap_err();
    assert_eq!(e.code(), "CannotDelete");
    assert_eq!(e.to_string(), format!("the specified group: \"{}\" name: \"default\" cannot be deleted by a user", default.group_id));
}

async fn vpc_errors(place: Place) {
    let svc = place.service().await;
    let cases: &[(Option<&str>, &str, &str)] = &[
        (Some("10.0.0.0/8"), "InvalidVpc.Range", "The CIDR '10.0.0.0/8' is invalid."),
        (Some("10.0.0.0/29"), "InvalidVpc.Range", "The CIDR '10.0.0.0/29' is invalid."),
        (Some("nope"), "InvalidParameterValue", "Value (nope) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
        (None, "MissingParameter", "The request must contain the parameter cidrBlock"),
    ];
    for (cidr, code, message) in cases {
        let e = svc.create_vpc(cidr.map(str::to_string), vec![]).await.unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (*code, *message), "{cidr:?}");
    }
    let e = svc.create_vpc(Some("10.0.0.0/16".into()), tag_spec("subnet", "a", "b")).await.unwrap_err();
    assert_eq!(e.code(), "InvalidParameterValue");
    let e = svc.describe_vpcs(&["vpc-0000000000000000a".into()], &[]).unwrap_err();
    assert_eq!((e.code(), e.to_string().as_str()), ("InvalidVpcID.NotFound", "The vpc ID 'vpc-0000000000000000a' does not exist"));
    let e = svc.describe_vpcs(&[], &[filter("colour", &["x"])]).unwrap_err();
    assert_eq!((e.code(), e.to_string().as_str()), ("InvalidParameterValue", "The filter 'colour' is invalid"));
    let e = svc.delete_vpc("vpc-1".into()).await.unwrap_err();
    assert_eq!(e.code(), "InvalidVpcID.NotFound");
}

async fn subnets_fit_their_vpc_and_do_not_overlap(place: Place) {
    let svc = place.service().await;
    let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    let s = svc.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, tag_spec("subnet", "tier", "app")).await.unwrap();
    assert!(is_id(&s.subnet_id, "subnet"));
    assert_eq!((s.availability_zone.as_str(), s.available_ip_address_count), ("us-east-1a", 251));
    assert_eq!(s.subnet_arn, format!("arn:aws:ec2:us-east-1:123456789012:subnet/{}", s.subnet_id));
    let cases: &[(&str, &str, &str)] = &[
        ("10.0.1.128/25", "InvalidSubnet.Conflict", "The CIDR '10.0.1.128/25' conflicts with another subnet"),
        ("10.0.0.0/23", "InvalidSubnet.Conflict", "The CIDR '10.0.0.0/23' conflicts with another subnet"),
        ("10.1.0.0/24", "InvalidSubnet.Range", "The CIDR '10.1.0.0/24' is invalid."),
        ("10.0.2.0/29", "InvalidSubnet.Range", "The CIDR '10.0.2.0/29' is invalid."),
    ];
    for (cidr, code, message) in cases {
        let e = svc.create_subnet(vpc.clone(), Some(cidr.to_string()), None, vec![]).await.unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), (*code, *message), "{cidr}");
    }
    let e = svc.create_subnet("vpc-1".into(), Some("10.0.2.0/24".into()), None, vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidVpcID.NotFound");
    let e = svc.create_subnet(vpc.clone(), Some("10.0.2.0/24".into()), Some("eu-west-1a".into()), vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidParameterValue");
    svc.create_subnet(vpc.clone(), Some("10.0.2.0/24".into()), Some("us-east-1b".into()), vec![]).await.unwrap();
    assert_eq!(svc.describe_subnets(&[], &[filter("vpc-id", &[&vpc])]).unwrap().len(), 2);
    assert_eq!(svc.describe_subnets(&[], &[filter("tag:tier", &["app"])]).unwrap().len(), 1);
    assert_eq!(svc.describe_subnets(&[], &[filter("availability-zone", &["us-east-1b"])]).unwrap().len(), 1);
    let e = svc.describe_subnets(&["subnet-0".into()], &[]).unwrap_err();
    assert_eq!((e.code(), e.to_string().as_str()), ("InvalidSubnetID.NotFound", "The subnet ID 'subnet-0' does not exist"));

    // A VPC with subnets is not deleted; an empty one is, with its default group.
    let e = svc.delete_vpc(vpc.clone()).await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("DependencyViolation", format!("The vpc '{vpc}' has dependencies and cannot be deleted.")));
    for s in svc.describe_subnets(&[], &[]).unwrap() {
        svc.delete_subnet(s.subnet_id).await.unwrap();
    }
    svc.delete_vpc(vpc.clone()).await.unwrap();
    assert!(svc.describe_security_groups(&[], &[], &[]).unwrap().is_empty());
}

async fn security_groups_and_their_rules(place: Place) {
    let svc = place.service().await;
    let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    let g = svc.create_security_group("web".into(), "web tier".into(), Some(vpc.clone()), vec![]).await.unwrap();
    assert!(is_id(&g.group_id, "sg"));
    let e = svc.create_security_group("web".into(), "again".into(), Some(vpc.clone()), vec![]).await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("InvalidGroup.Duplicate", format!("The security group 'web' already exists for VPC '{vpc}'")));
    let e = svc.create_security_group("sg-x".into(), "d".into(), Some(vpc.clone()), vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidParameterValue");
    let e = svc.create_security_group("x".into(), "d".into(), None, vec![]).await.unwrap_err();
    assert_eq!((e.code(), e.to_string().as_str()), ("VPCIdNotSpecified", "No default VPC for this user"));

    // A new group allows all egress and no ingress.
    let info = &svc.describe_security_groups(std::slice::from_ref(&g.group_id), &[], &[]).unwrap()[0];
    assert!(info.ip_permissions.is_empty());
    assert_eq!(info.ip_permissions_egress.len(), 1);

    let added =
        svc.authorize(g.group_id.clone(), Direction::Ingress, vec![tcp(443, "10.0.0.0/8"), tcp(443, "192.168.0.0/16")]).await.unwrap();
    assert_eq!(added.len(), 2);
    assert!(is_id(&added[0].security_group_rule_id, "sgr"));
    assert_eq!((added[0].from_port, added[0].to_port, added[0].is_egress), (443, 443, false));
    let e = svc.authorize(g.group_id.clone(), Direction::Ingress, vec![tcp(443, "10.0.0.0/8")]).await.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidPermission.Duplicate", "the specified rule \"peer: 10.0.0.0/8, TCP, from port: 443, to port: 443, ALLOW\" already exists")
    );
    // Rules of one protocol and port range answer as one permission.
    let info = &svc.describe_security_groups(std::slice::from_ref(&g.group_id), &[], &[]).unwrap()[0];
    assert_eq!(info.ip_permissions.len(), 1);
    assert_eq!(info.ip_permissions[0].ip_ranges.len(), 2);

    // Protocols and ports are checked.
    let bad = PermissionInput {
        ip_protocol: Some("tcp".into()),
        ip_ranges: vec![IpRange { cidr_ip: Some("0.0.0.0/0".into()), description: None }],
        ..Default::default()
    };
    assert_eq!(svc.authorize(g.group_id.clone(), Direction::Egress, vec![bad]).await.unwrap_err().code(), "InvalidParameterValue");
    let bad = PermissionInput { ip_protocol: Some("tcpx".into()), ..tcp(1, "0.0.0.0/0") };
    assert_eq!(svc.authorize(g.group_id.clone(), Direction::Egress, vec![bad]).await.unwrap_err().code(), "InvalidParameterValue");
    let bad = tcp(1, "10.0.0.0/33");
    assert_eq!(svc.authorize(g.group_id.clone(), Direction::Egress, vec![bad]).await.unwrap_err().code(), "InvalidParameterValue");
    // "6" is TCP.
    let six = PermissionInput { ip_protocol: Some("6".into()), ..tcp(22, "10.1.0.0/16") };
    assert_eq!(svc.authorize(g.group_id.clone(), Direction::Egress, vec![six]).await.unwrap()[0].ip_protocol, "tcp");

    // Egress: revoke the allow-all rule, add one port.
    let all = PermissionInput {
        ip_protocol: Some("-1".into()),
        ip_ranges: vec![IpRange { cidr_ip: Some("0.0.0.0/0".into()), description: None }],
        ..Default::default()
    };
    let revoked = svc.revoke(g.group_id.clone(), Direction::Egress, vec![all.clone()], vec![]).await.unwrap();
    assert_eq!(revoked.len(), 1);
    let e = svc.revoke(g.group_id.clone(), Direction::Egress, vec![all], vec![]).await.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
    );
    let rules = svc.group(&g.group_id).unwrap();
    assert_eq!(rules.egress.len(), 1);
    let id = rules.egress[0].id.clone();
    svc.revoke(g.group_id.clone(), Direction::Egress, vec![], vec![id]).await.unwrap();
    assert!(svc.group(&g.group_id).unwrap().egress.is_empty());

    // Group references: the group must exist; a referenced group is not deleted.
    let other = svc.create_security_group("db".into(), "db".into(), Some(vpc.clone()), vec![]).await.unwrap();
    let from_web = PermissionInput {
        ip_protocol: Some("tcp".into()),
        from_port: Some(5432),
        to_port: Some(5432),
        user_id_group_pairs: vec![UserIdGroupPair { group_id: Some(g.group_id.clone()), ..Default::default() }],
        ..Default::default()
    };
    svc.authorize(other.group_id.clone(), Direction::Ingress, vec![from_web]).await.unwrap();
    assert_eq!(svc.group(&other.group_id).unwrap().ingress[0].peer, Peer::Group(g.group_id.clone()));
    let e = svc.delete_security_group(Some(g.group_id.clone()), None).await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("DependencyViolation", format!("resource {} has a dependent object", g.group_id)));
    let missing = PermissionInput {
        ip_protocol: Some("-1".into()),
        user_id_group_pairs: vec![UserIdGroupPair { group_id: Some("sg-0".into()), ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(svc.authorize(other.group_id.clone(), Direction::Ingress, vec![missing]).await.unwrap_err().code(), "InvalidGroup.NotFound");
    svc.delete_security_group(Some(other.group_id.clone()), None).await.unwrap();
    svc.delete_security_group(Some(g.group_id.clone()), None).await.unwrap();
    let e = svc.delete_security_group(Some(g.group_id.clone()), None).await.unwrap_err();
    assert_eq!((e.code(), e.to_string()), ("InvalidGroup.NotFound", format!("The security group '{}' does not exist", g.group_id)));
}

async fn what_a_function_uses_is_not_deleted_and_rule_changes_are_announced(place: Place) {
    let svc = place.service().await;
    let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    let subnet = svc.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, vec![]).await.unwrap().subnet_id;
    let group = svc.create_security_group("g".into(), "g".into(), Some(vpc.clone()), vec![]).await.unwrap().group_id;
    svc.set_attachments(Arc::new(Users(vec![subnet.clone(), group.clone()])));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    svc.on_group_change(move |id| s.lock().unwrap().push(id.to_string()));

    let e = svc.delete_subnet(subnet.clone()).await.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        ("DependencyViolation", format!("The subnet '{subnet}' has dependencies and cannot be deleted."))
    );
    let e = svc.delete_security_group(Some(group.clone()), None).await.unwrap_err();
    assert_eq!(e.code(), "DependencyViolation");
    svc.authorize(group.clone(), Direction::Egress, vec![tcp(80, "0.0.0.0/0")]).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![group.clone()]);

    let view = svc.subnet(&subnet).unwrap();
    assert_eq!((view.vpc.as_str(), view.cidr.to_string().as_str()), (vpc.as_str(), "10.0.1.0/24"));
    assert_eq!(svc.vpc(&vpc).unwrap().cidr.to_string(), "10.0.0.0/16");
}

async fn everything_survives_a_restart(place: Place) {
    let (vpc, subnet, group) = {
        let svc = place.service().await;
        let vpc = svc.create_vpc(Some("10.0.0.0/16".into()), tag_spec("vpc", "k", "v")).await.unwrap().vpc_id;
        let subnet = svc.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, vec![]).await.unwrap().subnet_id;
        let group = svc.create_security_group("g".into(), "g".into(), Some(vpc.clone()), vec![]).await.unwrap().group_id;
        svc.authorize(group.clone(), Direction::Ingress, vec![tcp(22, "10.0.0.0/16")]).await.unwrap();
        (vpc, subnet, group)
    };
    let svc = place.service().await;
    assert_eq!(svc.describe_vpcs(&[], &[filter("tag:k", &["v"])]).unwrap()[0].vpc_id, vpc);
    assert_eq!(svc.subnet(&subnet).unwrap().vpc, vpc);
    assert_eq!(svc.group(&group).unwrap().ingress.len(), 1);
}

/// Waits (a second at most) until `ok` holds.
async fn within_a_second(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < Duration::from_secs(1), "{what}: not after a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The groups a service told its listeners of, in order.
fn listened(svc: &NetworkService) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    svc.on_group_change(move |id| s.lock().unwrap().push(id.to_string()));
    seen
}

#[tokio::test]
async fn what_one_node_makes_the_other_sees_within_a_second() {
    let Some(url) = fresh_database().await else { return };
    let a = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let b = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let vpc = a.create_vpc(Some("10.0.0.0/16".into()), tag_spec("vpc", "Name", "shared")).await.unwrap().vpc_id;
    let subnet = a.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, vec![]).await.unwrap().subnet_id;
    let group = a.create_security_group("g".into(), "shared".into(), Some(vpc.clone()), vec![]).await.unwrap().group_id;
    within_a_second("b sees the subnet and the group", || b.subnet(&subnet).is_some() && b.group(&group).is_some()).await;
    assert_eq!(b.vpc(&vpc).unwrap().cidr.to_string(), "10.0.0.0/16");
    assert_eq!(b.subnet(&subnet).unwrap().vpc, vpc);
    assert_eq!(b.describe_vpcs(&[], &[filter("tag:Name", &["shared"])]).unwrap()[0].vpc_id, vpc);
    assert_eq!(b.describe_security_groups(&[], &[], &[filter("vpc-id", &[&vpc])]).unwrap().len(), 2);
    // b checks against what a made: an overlapping subnet, a group's name again.
    let e = b.create_subnet(vpc.clone(), Some("10.0.1.0/25".into()), None, vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidSubnet.Conflict");
    let e = b.create_security_group("g".into(), "again".into(), Some(vpc.clone()), vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidGroup.Duplicate");
    // Deleted on b: gone on a.
    b.delete_subnet(subnet.clone()).await.unwrap();
    within_a_second("a forgets the subnet", || a.subnet(&subnet).is_none()).await;
    assert!(a.describe_subnets(&[], &[]).unwrap().is_empty());
}

#[tokio::test]
async fn a_rule_change_on_one_node_is_announced_on_the_other() {
    let Some(url) = fresh_database().await else { return };
    let a = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let b = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let vpc = a.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    let group = a.create_security_group("g".into(), "g".into(), Some(vpc.clone()), vec![]).await.unwrap().group_id;
    within_a_second("b knows the group", || b.group(&group).is_some()).await;
    let seen = listened(&b);

    a.authorize(group.clone(), Direction::Egress, vec![tcp(443, "10.1.0.0/16")]).await.unwrap();
    within_a_second("b is told of the new rule", || *seen.lock().unwrap() == [group.clone()]).await;
    assert_eq!(b.group(&group).unwrap().egress.len(), 2);
    a.revoke(group.clone(), Direction::Egress, vec![tcp(443, "10.1.0.0/16")], vec![]).await.unwrap();
    within_a_second("b is told of the revoked rule", || seen.lock().unwrap().len() == 2).await;
    assert_eq!(b.group(&group).unwrap().egress.len(), 1);
    // A change elsewhere than the groups tells nothing; a deleted group is told.
    a.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, vec![]).await.unwrap();
    a.delete_security_group(Some(group.clone()), None).await.unwrap();
    within_a_second("b is told of the deleted group", || seen.lock().unwrap().len() == 3).await;
    assert!(b.group(&group).is_none());
    assert_eq!(*seen.lock().unwrap(), [group.clone(), group.clone(), group]);
}

/// A node whose mirror is behind (here: one that does not follow the feed) decides its
/// change again on what is stored: it never passes a check another node's commit fails.
#[tokio::test]
async fn a_change_decided_on_a_stale_mirror_is_decided_again() {
    let Some(url) = fresh_database().await else { return };
    let a = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let vpc = a.create_vpc(Some("10.0.0.0/16".into()), vec![]).await.unwrap().vpc_id;
    let store = NetworkStore::open_shared(&url, ACCOUNT, "nimbus-network-behind").await.unwrap();
    let behind = NetworkService::unfollowed(store, REGION, ACCOUNT).await.unwrap();
    let seen = listened(&behind);

    a.create_subnet(vpc.clone(), Some("10.0.1.0/24".into()), None, vec![]).await.unwrap();
    let group = a.create_security_group("g".into(), "g".into(), Some(vpc.clone()), vec![]).await.unwrap().group_id;
    let e = behind.create_subnet(vpc.clone(), Some("10.0.1.0/25".into()), None, vec![]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidSubnet.Conflict");
    // Its reload told its listeners of the group it had not known.
    assert_eq!(*seen.lock().unwrap(), std::slice::from_ref(&group));
    a.authorize(group.clone(), Direction::Ingress, vec![tcp(22, "10.0.0.0/16")]).await.unwrap();
    // Authorized there from an old copy of the group, the rule made on a would be lost.
    behind.authorize(group.clone(), Direction::Ingress, vec![tcp(80, "10.0.0.0/16")]).await.unwrap();
    assert_eq!(behind.group(&group).unwrap().ingress.len(), 2);
    within_a_second("a has both rules", || a.group(&group).is_some_and(|g| g.ingress.len() == 2)).await;

    // Two nodes making the same subnet at once: one wins.
    let b = NetworkService::open_shared(&url, REGION, ACCOUNT).await.unwrap();
    let (x, y) = tokio::join!(
        a.create_subnet(vpc.clone(), Some("10.0.2.0/24".into()), None, vec![]),
        b.create_subnet(vpc.clone(), Some("10.0.2.0/24".into()), None, vec![])
    );
    let codes: Vec<&str> = [&x, &y].iter().filter_map(|r| r.as_ref().err().map(|e| e.code())).collect();
    assert_eq!(codes, ["InvalidSubnet.Conflict"], "{x:?} {y:?}");
}

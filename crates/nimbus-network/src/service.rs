//! The network service: typed EC2 operations over the in-memory mirror of its store
//! (`network.db`, or the tables nodes share in PostgreSQL). Every change is made by one
//! writer at a time: it reads the state, commits its [`Change`]s, then applies them to
//! memory, in a task of its own, so a caller that goes away cannot leave memory behind the
//! database. Over a shared store, another node's change (or a cut in the change feed) makes
//! the service read everything again and replace its mirror, as the writer, telling the
//! group-change listeners of every group that changed, so each node applies another node's
//! rule changes to its own environments; a change decided on a mirror another node's commit
//! made stale is decided again after a reload. Lambda (a function's `VpcConfig`) and the
//! data plane read the mirror through [`NetworkService::subnet`], [`NetworkService::group`]
//! and [`NetworkService::vpc`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::filter::{check_names, passes, Filter};
use crate::store::{Change, Committed, GroupRecord, NetworkStore, Peer, RuleRecord, Snapshot, SubnetRecord, Tag, VpcRecord};
use crate::NetworkError;

/// What uses a subnet or a security group outside this service: Lambda functions with a
/// `VpcConfig`. A subnet or group in use cannot be deleted.
#[async_trait::async_trait]
pub trait Attachments: Send + Sync {
    /// The users of the subnet or security group `id` (function ARNs), if any.
    async fn users(&self, id: &str) -> Vec<String>;
}

/// Rules one security group may have in each direction (EC2's default quota).
pub const MAX_RULES: usize = 60;

/// How many times a change is decided again after another node's commit made it stale
/// before it fails: each time after a reload, so only nodes changing networks without a
/// pause make it fail.
const STALE_RETRIES: usize = 10;

/// The state mirrored from the store.
#[derive(Default)]
struct State {
    vpcs: BTreeMap<String, VpcRecord>,
    subnets: BTreeMap<String, SubnetRecord>,
    groups: BTreeMap<String, GroupRecord>,
    /// The store's count of commits this state reflects (see [`NetworkStore::commit`]).
    generation: i64,
}

impl State {
    fn of(snapshot: Snapshot) -> State {
        State {
            vpcs: snapshot.vpcs.into_iter().map(|v| (v.id.clone(), v)).collect(),
            subnets: snapshot.subnets.into_iter().map(|s| (s.id.clone(), s)).collect(),
            groups: snapshot.groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
            generation: snapshot.generation,
        }
    }
}

type GroupListener = Box<dyn Fn(&str) + Send + Sync>;

/// VPCs, subnets and security groups of one account and region.
pub struct NetworkService {
    region: String,
    account: String,
    store: NetworkStore,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
    attachments: RwLock<Option<Arc<dyn Attachments>>>,
    /// Told the id of every security group whose rules changed or that was deleted.
    listeners: RwLock<Vec<GroupListener>>,
}

// ---- typed inputs and answers (EC2's model names) ---------------------------------------

/// `TagSpecification.N`: the tags a Create call puts on what it makes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    pub resource_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// An `IpRange` of a permission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A `UserIdGroupPair` of a permission: the members of a security group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserIdGroupPair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub vpc_id: Option<String>,
}

/// An `IpPermission` as a request gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionInput {
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    #[serde(default)]
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    #[serde(default)]
    pub ip_ranges: Vec<IpRange>,
    #[serde(default)]
    pub ipv6_ranges: Vec<serde_json::Value>,
    #[serde(default)]
    pub prefix_list_ids: Vec<serde_json::Value>,
}

/// An `IpPermission` as Describe answers it: the rules of one protocol and port range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpPermission {
    pub ip_protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i64>,
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    pub ip_ranges: Vec<IpRange>,
    pub ipv6_ranges: Vec<serde_json::Value>,
    pub prefix_list_ids: Vec<serde_json::Value>,
}

/// `CidrBlockState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrBlockState {
    pub state: &'static str,
}

/// `VpcCidrBlockAssociation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrBlockAssociation {
    pub association_id: String,
    pub cidr_block: String,
    pub cidr_block_state: CidrBlockState,
}

/// A VPC (`Vpc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcInfo {
    pub owner_id: String,
    pub instance_tenancy: &'static str,
    pub ipv6_cidr_block_association_set: Vec<serde_json::Value>,
    pub cidr_block_association_set: Vec<CidrBlockAssociation>,
    pub is_default: bool,
    pub tags: Vec<Tag>,
    pub vpc_id: String,
    pub state: &'static str,
    pub cidr_block: String,
    pub dhcp_options_id: &'static str,
}

/// A subnet (`Subnet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetInfo {
    pub map_customer_owned_ip_on_launch: bool,
    pub owner_id: String,
    pub assign_ipv6_address_on_creation: bool,
    pub ipv6_cidr_block_association_set: Vec<serde_json::Value>,
    pub tags: Vec<Tag>,
    pub subnet_arn: String,
    pub enable_dns64: bool,
    pub ipv6_native: bool,
    pub subnet_id: String,
    pub state: &'static str,
    pub vpc_id: String,
    pub cidr_block: String,
    pub available_ip_address_count: i64,
    pub availability_zone: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
}

/// A security group (`SecurityGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupInfo {
    pub group_id: String,
    pub ip_permissions_egress: Vec<IpPermission>,
    pub tags: Vec<Tag>,
    pub vpc_id: String,
    pub security_group_arn: String,
    pub owner_id: String,
    pub group_name: String,
    pub description: String,
    pub ip_permissions: Vec<IpPermission>,
}

/// CreateSecurityGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewSecurityGroup {
    pub group_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub security_group_arn: String,
}

/// `ReferencedSecurityGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReferencedGroup {
    pub group_id: String,
    pub user_id: String,
}

/// A rule as Authorize answers it (`SecurityGroupRule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupRule {
    pub security_group_rule_id: String,
    pub group_id: String,
    pub group_owner_id: String,
    pub is_egress: bool,
    pub ip_protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referenced_group_info: Option<ReferencedGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub security_group_rule_arn: String,
}

/// A rule as Revoke answers it (`RevokedSecurityGroupRule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RevokedRule {
    pub security_group_rule_id: String,
    pub group_id: String,
    pub is_egress: bool,
    pub ip_protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referenced_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A subnet as Lambda and the data plane see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetView {
    pub id: String,
    pub vpc: String,
    pub cidr: Cidr,
}

/// A VPC as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcView {
    pub id: String,
    pub cidr: Cidr,
}

/// Which way a security group rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

// ---- helpers ------------------------------------------------------------------------------

/// A new id: `prefix-` and 17 hex digits, as EC2's ids look.
fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &hex[..17])
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The tags of `specs` meant for `resource_type`; a specification for another type is
/// refused, as EC2 refuses it.
fn tags_for(specs: Vec<TagSpecification>, resource_type: &str) -> Result<Vec<Tag>, NetworkError> {
    let mut tags = Vec::new();
    for s in specs {
        match s.resource_type.as_deref() {
            Some(t) if t == resource_type => tags.extend(s.tags),
            Some(t) => {
                return Err(NetworkError::InvalidParameterValue(format!("'{t}' is not a valid taggable resource type for this operation.")))
            }
            None => return Err(NetworkError::MissingParameter("TagSpecification.resourceType".into())),
        }
    }
    for t in &tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(NetworkError::InvalidParameterValue(format!("Tag key '{}' or its value is not valid", t.key)));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(NetworkError::InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use".into()));
        }
    }
    Ok(tags)
}

/// A rule's protocol as EC2 stores it: `tcp`, `udp`, `icmp`, `icmpv6`, `-1`, or a number.
fn protocol(text: &str) -> Result<String, NetworkError> {
    let lower = text.to_ascii_lowercase();
    let named = match lower.as_str() {
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "icmpv6" | "58" => "icmpv6",
        "-1" | "all" => "-1",
        n => {
            return match n.parse::<u8>() {
                Ok(v) => Ok(v.to_string()),
                Err(_) => Err(NetworkError::InvalidParameterValue(format!("Invalid value '{text}' for IP protocol. Unknown protocol."))),
            }
        }
    };
    Ok(named.to_string())
}

/// The port range a rule of `protocol` keeps: TCP and UDP need both ends (0–65535), ICMP's
/// are its type and code (-1 for all), others have none.
fn ports(protocol: &str, from: Option<i64>, to: Option<i64>) -> Result<(Option<i64>, Option<i64>), NetworkError> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(NetworkError::InvalidParameterValue(
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange".into(),
                ));
            };
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                return Err(NetworkError::InvalidParameterValue(format!("Invalid TCP/UDP port range {from}-{to}")));
            }
            Ok((Some(from), Some(to)))
        }
        "icmp" | "icmpv6" => {
            let (from, to) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&from) || !(-1..=255).contains(&to) {
                return Err(NetworkError::InvalidParameterValue(format!("Invalid value '{from}/{to}' for ICMP type and code")));
            }
            Ok((Some(from), Some(to)))
        }
        _ => Ok((None, None)),
    }
}

/// EC2's spelling of a rule in its duplicate message:
/// `peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW`.
fn describe_rule(r: &RuleRecord) -> String {
    let peer = match &r.peer {
        Peer::Cidr(c) => c.clone(),
        Peer::Group(g) => g.clone(),
    };
    match (r.protocol.as_str(), r.from_port, r.to_port) {
        ("-1", _, _) => format!("peer: {peer}, ALL, ALLOW"),
        (p, Some(from), Some(to)) => format!("peer: {peer}, {}, from port: {from}, to port: {to}, ALLOW", p.to_ascii_uppercase()),
        (p, _, _) => format!("peer: {peer}, {}, ALLOW", p.to_ascii_uppercase()),
    }
}

fn same_rule(a: &RuleRecord, b: &RuleRecord) -> bool {
    a.protocol == b.protocol && a.from_port == b.from_port && a.to_port == b.to_port && a.peer == b.peer
}

impl State {
    fn group_by_name(&self, vpc: &str, name: &str) -> Option<&GroupRecord> {
        self.groups.values().find(|g| g.vpc == vpc && g.name == name)
    }
}

impl NetworkService {
    /// Opens `network.db` at `path` and loads it.
    pub async fn open(path: &Path, region: &str, account: &str) -> Result<Arc<NetworkService>, NetworkError> {
        Self::with_store(NetworkStore::open(path)?, region, account).await
    }

    /// Opens `account`'s networks in the PostgreSQL database at `url`, which every node
    /// shares, loads them, and follows the other nodes' changes from then on: each one (or a
    /// cut in the change feed) reloads the whole state.
    pub async fn open_shared(url: &str, region: &str, account: &str) -> Result<Arc<NetworkService>, NetworkError> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-network-{}", uuid::Uuid::new_v4().simple());
        Self::with_store(NetworkStore::open_shared(url, account, &node).await?, region, account).await
    }

    /// The same over an already opened store (tests use an in-memory one).
    pub async fn with_store(store: NetworkStore, region: &str, account: &str) -> Result<Arc<NetworkService>, NetworkError> {
        let svc = Self::unfollowed(store, region, account).await?;
        svc.follow();
        Ok(svc)
    }

    /// [`NetworkService::with_store`] that does not follow other nodes' changes (tests of a
    /// node whose mirror is behind).
    pub(crate) async fn unfollowed(store: NetworkStore, region: &str, account: &str) -> Result<Arc<NetworkService>, NetworkError> {
        let state = State::of(store.load().await?);
        Ok(Arc::new(NetworkService {
            region: region.to_string(),
            account: account.to_string(),
            store,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
            attachments: RwLock::new(None),
            listeners: RwLock::new(Vec::new()),
        }))
    }

    /// Over a shared store: reloads after every announcement of another node's change, one
    /// reload at a time; announcements heard during a reload make one more.
    fn follow(self: &Arc<Self>) {
        if !self.store.is_shared() {
            return;
        }
        let what = format!("the networks of account {}", self.account);
        self.store.watch(
            Arc::downgrade(self),
            nimbus_store::pg::reloader(Arc::downgrade(self), what, |svc: Arc<Self>| async move { svc.reload().await }),
        );
    }

    /// Reads everything from the store and replaces the state with it. As the writer: a
    /// change of this node's is either committed before the read (and in it) or made after
    /// the replacement, never lost in between.
    async fn reload(&self) -> Result<(), NetworkError> {
        let _writer = self.writer.lock().await;
        self.reload_as_writer().await
    }

    /// [`NetworkService::reload`], by a caller holding the writer; then tells the listeners
    /// of every group that is new, changed or gone, as if the change had been made here.
    async fn reload_as_writer(&self) -> Result<(), NetworkError> {
        let state = State::of(self.store.load().await?);
        let touched: Vec<String> = {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            let old = std::mem::replace(&mut *st, state);
            let ids: std::collections::BTreeSet<&String> = old.groups.keys().chain(st.groups.keys()).collect();
            ids.into_iter().filter(|id| old.groups.get(*id) != st.groups.get(*id)).cloned().collect()
        };
        self.tell(touched);
        Ok(())
    }

    /// Tells every listener that the groups `touched` changed.
    fn tell(&self, touched: Vec<String>) {
        for id in touched {
            for l in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
                l(&id);
            }
        }
    }

    /// Subnets and groups in use by `a`'s users cannot be deleted.
    pub fn set_attachments(&self, a: Arc<dyn Attachments>) {
        *self.attachments.write().unwrap_or_else(|p| p.into_inner()) = Some(a);
    }

    /// Calls `f(group_id)` after a security group's rules changed or it was deleted.
    pub fn on_group_change(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.listeners.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{}:{}:{kind}/{id}", self.region, self.account)
    }

    /// Commits `changes`, then applies them to memory and tells the listeners: true. Or,
    /// if another node committed since the state they were decided on, reloads it instead:
    /// false (decide again). Called with the writer held.
    async fn commit(&self, changes: Vec<Change>) -> Result<bool, NetworkError> {
        if changes.is_empty() {
            return Ok(true);
        }
        let generation = self.read().generation;
        if self.store.commit(changes.clone(), generation).await? == Committed::Stale {
            self.reload_as_writer().await?;
            return Ok(false);
        }
        let mut touched = Vec::new();
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.generation += 1;
            for change in changes {
                match change {
                    Change::PutVpc(v) => {
                        st.vpcs.insert(v.id.clone(), v);
                    }
                    Change::DeleteVpc(id) => {
                        st.vpcs.remove(&id);
                    }
                    Change::PutSubnet(s) => {
                        st.subnets.insert(s.id.clone(), s);
                    }
                    Change::DeleteSubnet(id) => {
                        st.subnets.remove(&id);
                    }
                    Change::PutGroup(g) => {
                        touched.push(g.id.clone());
                        st.groups.insert(g.id.clone(), g);
                    }
                    Change::DeleteGroup(id) => {
                        st.groups.remove(&id);
                        touched.push(id);
                    }
                }
            }
        }
        self.tell(touched);
        Ok(true)
    }

    /// One change: `f` reads the state and says what to commit; the commit and the memory
    /// change run in a task of their own, one writer at a time. Decided again (after a
    /// reload) if another node's commit made the state it read stale.
    async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl Fn(&NetworkService, &State) -> Result<(T, Vec<Change>), NetworkError> + Send + 'static,
    ) -> Result<T, NetworkError> {
        let this = self.clone();
        tokio::spawn(async move {
            let _writer = this.writer.lock().await;
            for _ in 0..STALE_RETRIES {
                let (out, changes) = f(&this, &this.read())?;
                if this.commit(changes).await? {
                    return Ok(out);
                }
            }
            Err(NetworkError::Internal("other nodes changed the networks again and again: try again".into()))
        })
        .await
        .map_err(|e| NetworkError::Internal(format!("network change failed: {e}")))?
    }

    async fn users(&self, id: &str) -> Vec<String> {
        let a = self.attachments.read().unwrap_or_else(|p| p.into_inner()).clone();
        match a {
            Some(a) => a.users(id).await,
            None => Vec::new(),
        }
    }

    // ---- answers ------------------------------------------------------------------------

    fn vpc_info(&self, v: &VpcRecord, state: &'static str) -> VpcInfo {
        VpcInfo {
            owner_id: self.account.clone(),
            instance_tenancy: "default",
            ipv6_cidr_block_association_set: Vec::new(),
            cidr_block_association_set: vec![CidrBlockAssociation {
                association_id: v.association_id.clone(),
                cidr_block: v.cidr.clone(),
                cidr_block_state: CidrBlockState { state: "associated" },
            }],
            is_default: false,
            tags: v.tags.clone(),
            vpc_id: v.id.clone(),
            state,
            cidr_block: v.cidr.clone(),
            dhcp_options_id: "default",
        }
    }

    fn subnet_info(&self, s: &SubnetRecord) -> SubnetInfo {
        // EC2 keeps five addresses of every subnet: the network, its router, DNS, one for
        // later, and the broadcast address.
        let size = Cidr::parse(&s.cidr, true).map_or(0, |c| c.size() as i64);
        SubnetInfo {
            map_customer_owned_ip_on_launch: false,
            owner_id: self.account.clone(),
            assign_ipv6_address_on_creation: false,
            ipv6_cidr_block_association_set: Vec::new(),
            tags: s.tags.clone(),
            subnet_arn: self.arn("subnet", &s.id),
            enable_dns64: false,
            ipv6_native: false,
            subnet_id: s.id.clone(),
            state: "available",
            vpc_id: s.vpc.clone(),
            cidr_block: s.cidr.clone(),
            available_ip_address_count: (size - 5).max(0),
            availability_zone: s.availability_zone.clone(),
            default_for_az: false,
            map_public_ip_on_launch: false,
        }
    }

    /// A group's rules as Describe answers them: one permission per protocol and port range,
    /// in the order their first rule was added.
    fn permissions(&self, rules: &[RuleRecord]) -> Vec<IpPermission> {
        let mut out: Vec<IpPermission> = Vec::new();
        for r in rules {
            let i = match out.iter().position(|p| p.ip_protocol == r.protocol && p.from_port == r.from_port && p.to_port == r.to_port) {
                Some(i) => i,
                None => {
                    out.push(IpPermission {
                        ip_protocol: r.protocol.clone(),
                        from_port: r.from_port,
                        to_port: r.to_port,
                        user_id_group_pairs: Vec::new(),
                        ip_ranges: Vec::new(),
                        ipv6_ranges: Vec::new(),
                        prefix_list_ids: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            match &r.peer {
                Peer::Cidr(c) => out[i].ip_ranges.push(IpRange { cidr_ip: Some(c.clone()), description: r.description.clone() }),
                Peer::Group(g) => out[i].user_id_group_pairs.push(UserIdGroupPair {
                    description: r.description.clone(),
                    user_id: Some(self.account.clone()),
                    group_id: Some(g.clone()),
                    ..Default::default()
                }),
            }
        }
        out
    }

    fn group_info(&self, g: &GroupRecord) -> SecurityGroupInfo {
        SecurityGroupInfo {
            group_id: g.id.clone(),
            ip_permissions_egress: self.permissions(&g.egress),
            tags: g.tags.clone(),
            vpc_id: g.vpc.clone(),
            security_group_arn: self.arn("security-group", &g.id),
            owner_id: self.account.clone(),
            group_name: g.name.clone(),
            description: g.description.clone(),
            ip_permissions: self.permissions(&g.ingress),
        }
    }

    fn rule_info(&self, group: &str, egress: bool, r: &RuleRecord) -> SecurityGroupRule {
        SecurityGroupRule {
            security_group_rule_id: r.id.clone(),
            group_id: group.to_string(),
            group_owner_id: self.account.clone(),
            is_egress: egress,
            ip_protocol: r.protocol.clone(),
            from_port: r.from_port.unwrap_or(-1),
            to_port: r.to_port.unwrap_or(-1),
            cidr_ipv4: match &r.peer {
                Peer::Cidr(c) => Some(c.clone()),
                Peer::Group(_) => None,
            },
            referenced_group_info: match &r.peer {
                Peer::Group(g) => Some(ReferencedGroup { group_id: g.clone(), user_id: self.account.clone() }),
                Peer::Cidr(_) => None,
            },
            description: r.description.clone(),
            tags: Vec::new(),
            security_group_rule_arn: self.arn("security-group-rule", &r.id),
        }
    }

    // ---- VPCs ---------------------------------------------------------------------------

    /// CreateVpc: a VPC with its CIDR block (/16 to /28) and its default security group.
    pub async fn create_vpc(self: &Arc<Self>, cidr: Option<String>, tags: Vec<TagSpecification>) -> Result<VpcInfo, NetworkError> {
        let cidr = cidr.ok_or_else(|| NetworkError::MissingParameter("cidrBlock".into()))?;
        let block = Cidr::parse(&cidr, false).ok_or_else(|| {
            NetworkError::InvalidParameterValue(format!(
                "Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ))
        })?;
        if !(16..=28).contains(&block.prefix) {
            return Err(NetworkError::VpcRange(cidr));
        }
        let tags = tags_for(tags, "vpc")?;
        let id = new_id("vpc");
        let created = now();
        let group = GroupRecord {
            id: new_id("sg"),
            vpc: id.clone(),
            name: "default".into(),
            description: "default VPC security group".into(),
            tags: Vec::new(),
            ingress: Vec::new(),
            egress: vec![allow_all_egress()],
            created,
        };
        // Members of the default group reach each other.
        let group = GroupRecord {
            ingress: vec![RuleRecord {
                id: new_id("sgr"),
                protocol: "-1".into(),
                from_port: None,
                to_port: None,
                peer: Peer::Group(group.id.clone()),
                description: None,
            }],
            ..group
        };
        let vpc = VpcRecord {
            id,
            cidr: block.to_string(),
            association_id: new_id("vpc-cidr-assoc"),
            default_group: group.id.clone(),
            tags,
            created,
        };
        self.change(move |svc, _| Ok((svc.vpc_info(&vpc, "pending"), vec![Change::PutGroup(group.clone()), Change::PutVpc(vpc.clone())])))
            .await
    }

    /// DescribeVpcs.
    pub fn describe_vpcs(&self, ids: &[String], filters: &[Filter]) -> Result<Vec<VpcInfo>, NetworkError> {
        check_names(
            filters,
            &[
                "vpc-id",
                "cidr",
                "cidr-block",
                "cidrBlock",
                "cidr-block-association.cidr-block",
                "cidr-block-association.association-id",
                "cidr-block-association.state",
                "state",
                "is-default",
                "isDefault",
                "owner-id",
                "dhcp-options-id",
            ],
        )?;
        let st = self.read();
        if let Some(missing) = ids.iter().find(|id| !st.vpcs.contains_key(*id)) {
            return Err(NetworkError::VpcNotFound(missing.clone()));
        }
        let mut vpcs: Vec<&VpcRecord> = st.vpcs.values().filter(|v| ids.is_empty() || ids.contains(&v.id)).collect();
        vpcs.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let mut out = Vec::new();
        for v in vpcs {
            let field = |name: &str| -> Option<Vec<String>> {
                Some(match name {
                    "vpc-id" => vec![v.id.clone()],
                    "cidr" | "cidr-block" | "cidrBlock" | "cidr-block-association.cidr-block" => vec![v.cidr.clone()],
                    "cidr-block-association.association-id" => vec![v.association_id.clone()],
                    "cidr-block-association.state" => vec!["associated".into()],
                    "state" => vec!["available".into()],
                    "is-default" | "isDefault" => vec!["false".into()],
                    "owner-id" => vec![self.account.clone()],
                    "dhcp-options-id" => vec!["default".into()],
                    _ => return None,
                })
            };
            if passes(filters, &v.tags, field)? {
                out.push(self.vpc_info(v, "available"));
            }
        }
        Ok(out)
    }

    /// DeleteVpc: only an empty one (its default security group goes with it).
    pub async fn delete_vpc(self: &Arc<Self>, id: String) -> Result<(), NetworkError> {
        // Who uses the default group is the functions' business, not the networks': asked
        // once, before the decision.
        let default_group = self.read().vpcs.get(&id).map(|v| v.default_group.clone());
        let used = match default_group {
            Some(g) => !self.users(&g).await.is_empty(),
            None => false,
        };
        self.change(move |_, st| {
            let vpc = st.vpcs.get(&id).ok_or_else(|| NetworkError::VpcNotFound(id.clone()))?;
            let busy = st.subnets.values().any(|s| s.vpc == id) || st.groups.values().any(|g| g.vpc == id && g.id != vpc.default_group);
            if busy || used {
                return Err(NetworkError::DependencyViolation(format!("The vpc '{id}' has dependencies and cannot be deleted.")));
            }
            Ok(((), vec![Change::DeleteGroup(vpc.default_group.clone()), Change::DeleteVpc(id.clone())]))
        })
        .await
    }

    // ---- subnets ------------------------------------------------------------------------

    /// CreateSubnet: a block inside its VPC's (/16 to /28) that overlaps none of its
    /// subnets.
    pub async fn create_subnet(
        self: &Arc<Self>,
        vpc: String,
        cidr: Option<String>,
        zone: Option<String>,
        tags: Vec<TagSpecification>,
    ) -> Result<SubnetInfo, NetworkError> {
        let cidr = cidr.ok_or_else(|| NetworkError::MissingParameter("cidrBlock".into()))?;
        let block = Cidr::parse(&cidr, false).ok_or_else(|| {
            NetworkError::InvalidParameterValue(format!(
                "Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ))
        })?;
        let zones: Vec<String> = ["a", "b", "c", "d", "e", "f"].iter().map(|z| format!("{}{z}", self.region)).collect();
        let zone = zone.unwrap_or_else(|| zones[0].clone());
        if !zones.contains(&zone) {
            return Err(NetworkError::InvalidParameterValue(format!(
                "Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                zones.join(", ")
            )));
        }
        let tags = tags_for(tags, "subnet")?;
        self.change(move |svc, st| {
            let v = st.vpcs.get(&vpc).ok_or_else(|| NetworkError::VpcNotFound(vpc.clone()))?;
            let vpc_block = Cidr::parse(&v.cidr, true).ok_or_else(|| NetworkError::Internal(format!("{}: bad CIDR {}", v.id, v.cidr)))?;
            if !(16..=28).contains(&block.prefix) || !vpc_block.contains(&block) {
                return Err(NetworkError::SubnetRange(cidr.clone()));
            }
            let clash =
                st.subnets.values().filter(|s| s.vpc == vpc).any(|s| Cidr::parse(&s.cidr, true).is_some_and(|c| c.overlaps(&block)));
            if clash {
                return Err(NetworkError::SubnetConflict(cidr.clone()));
            }
            let s = SubnetRecord {
                id: new_id("subnet"),
                vpc: vpc.clone(),
                cidr: block.to_string(),
                availability_zone: zone.clone(),
                tags: tags.clone(),
                created: now(),
            };
            Ok((svc.subnet_info(&s), vec![Change::PutSubnet(s)]))
        })
        .await
    }

    /// DescribeSubnets.
    pub fn describe_subnets(&self, ids: &[String], filters: &[Filter]) -> Result<Vec<SubnetInfo>, NetworkError> {
        check_names(
            filters,
            &[
                "subnet-id",
                "vpc-id",
                "cidr",
                "cidr-block",
                "cidrBlock",
                "availability-zone",
                "availabilityZone",
                "state",
                "default-for-az",
                "defaultForAz",
                "owner-id",
                "subnet-arn",
            ],
        )?;
        let st = self.read();
        if let Some(missing) = ids.iter().find(|id| !st.subnets.contains_key(*id)) {
            return Err(NetworkError::SubnetNotFound(missing.clone()));
        }
        let mut subnets: Vec<&SubnetRecord> = st.subnets.values().filter(|s| ids.is_empty() || ids.contains(&s.id)).collect();
        subnets.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let mut out = Vec::new();
        for s in subnets {
            let field = |name: &str| -> Option<Vec<String>> {
                Some(match name {
                    "subnet-id" => vec![s.id.clone()],
                    "vpc-id" => vec![s.vpc.clone()],
                    "cidr" | "cidr-block" | "cidrBlock" => vec![s.cidr.clone()],
                    "availability-zone" | "availabilityZone" => vec![s.availability_zone.clone()],
                    "state" => vec!["available".into()],
                    "default-for-az" | "defaultForAz" => vec!["false".into()],
                    "owner-id" => vec![self.account.clone()],
                    "subnet-arn" => vec![self.arn("subnet", &s.id)],
                    _ => return None,
                })
            };
            if passes(filters, &s.tags, field)? {
                out.push(self.subnet_info(s));
            }
        }
        Ok(out)
    }

    /// DeleteSubnet: not while a function uses it.
    pub async fn delete_subnet(self: &Arc<Self>, id: String) -> Result<(), NetworkError> {
        let used = !self.users(&id).await.is_empty();
        self.change(move |_, st| {
            if !st.subnets.contains_key(&id) {
                return Err(NetworkError::SubnetNotFound(id.clone()));
            }
            if used {
                return Err(NetworkError::DependencyViolation(format!("The subnet '{id}' has dependencies and cannot be deleted.")));
            }
            Ok(((), vec![Change::DeleteSubnet(id.clone())]))
        })
        .await
    }

    // ---- security groups ----------------------------------------------------------------

    /// CreateSecurityGroup: a group of a VPC, allowing all egress and no ingress.
    pub async fn create_security_group(
        self: &Arc<Self>,
        name: String,
        description: String,
        vpc: Option<String>,
        tags: Vec<TagSpecification>,
    ) -> Result<NewSecurityGroup, NetworkError> {
        let vpc = vpc.ok_or(NetworkError::NoDefaultVpc)?;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(NetworkError::InvalidParameterValue(format!(
                "Value ({name}) for parameter GroupName is invalid. Group names must be between 1 and 255 characters."
            )));
        }
        if name.starts_with("sg-") {
            return Err(NetworkError::InvalidParameterValue("Group names may not be in the format sg-*".into()));
        }
        if description.chars().count() > 255 {
            return Err(NetworkError::InvalidParameterValue(
                "Value for parameter GroupDescription is invalid. Character sets beyond ASCII are not supported, and it must be at most 255 characters.".into(),
            ));
        }
        let tags = tags_for(tags, "security-group")?;
        self.change(move |svc, st| {
            if !st.vpcs.contains_key(&vpc) {
                return Err(NetworkError::VpcNotFound(vpc.clone()));
            }
            if st.group_by_name(&vpc, &name).is_some() {
                return Err(NetworkError::GroupDuplicate { name: name.clone(), vpc: vpc.clone() });
            }
            let g = GroupRecord {
                id: new_id("sg"),
                vpc: vpc.clone(),
                name: name.clone(),
                description: description.clone(),
                tags: tags.clone(),
                ingress: Vec::new(),
                egress: vec![allow_all_egress()],
                created: now(),
            };
            let out = NewSecurityGroup { group_id: g.id.clone(), tags: tags.clone(), security_group_arn: svc.arn("security-group", &g.id) };
            Ok((out, vec![Change::PutGroup(g)]))
        })
        .await
    }

    /// DescribeSecurityGroups. Names address the default VPC only, and Nimbus has none.
    pub fn describe_security_groups(
        &self,
        ids: &[String],
        names: &[String],
        filters: &[Filter],
    ) -> Result<Vec<SecurityGroupInfo>, NetworkError> {
        if let Some(name) = names.first() {
            return Err(NetworkError::GroupNameNotFound(name.clone()));
        }
        check_names(filters, &["group-id", "group-name", "vpc-id", "description", "owner-id"])?;
        let st = self.read();
        if let Some(missing) = ids.iter().find(|id| !st.groups.contains_key(*id)) {
            return Err(NetworkError::GroupNotFound(missing.clone()));
        }
        let mut groups: Vec<&GroupRecord> = st.groups.values().filter(|g| ids.is_empty() || ids.contains(&g.id)).collect();
        groups.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let mut out = Vec::new();
        for g in groups {
            let field = |name: &str| -> Option<Vec<String>> {
                Some(match name {
                    "group-id" => vec![g.id.clone()],
                    "group-name" => vec![g.name.clone()],
                    "vpc-id" => vec![g.vpc.clone()],
                    "description" => vec![g.description.clone()],
                    "owner-id" => vec![self.account.clone()],
                    _ => return None,
                })
            };
            if passes(filters, &g.tags, field)? {
                out.push(self.group_info(g));
            }
        }
        Ok(out)
    }

    /// DeleteSecurityGroup: not a VPC's default group, not one another group's rules name,
    /// not one a function uses. Answers the deleted group's id.
    pub async fn delete_security_group(self: &Arc<Self>, id: Option<String>, name: Option<String>) -> Result<String, NetworkError> {
        let id = match (id, name) {
            (Some(id), _) => id,
            (None, Some(name)) => return Err(NetworkError::GroupNameNotFound(name)),
            (None, None) => return Err(NetworkError::MissingParameter("groupName or groupId".into())),
        };
        let used = !self.users(&id).await.is_empty();
        self.change(move |_, st| {
            let g = st.groups.get(&id).ok_or_else(|| NetworkError::GroupNotFound(id.clone()))?;
            if st.vpcs.get(&g.vpc).is_some_and(|v| v.default_group == id) {
                return Err(NetworkError::CannotDelete { id: id.clone() });
            }
            let referenced = st
                .groups
                .values()
                .filter(|other| other.id != id)
                .flat_map(|other| other.ingress.iter().chain(other.egress.iter()))
                .any(|r| r.peer == Peer::Group(id.clone()));
            if referenced || used {
                return Err(NetworkError::DependencyViolation(format!("resource {id} has a dependent object")));
            }
            Ok((id.clone(), vec![Change::DeleteGroup(id.clone())]))
        })
        .await
    }

    /// The rules `perms` stand for, for a group of `vpc` (checked: protocols, ports, CIDR
    /// blocks, groups that exist).
    fn rules_of(st: &State, perms: Vec<PermissionInput>) -> Result<Vec<RuleRecord>, NetworkError> {
        let mut rules = Vec::new();
        for p in perms {
            if !p.ipv6_ranges.is_empty() || !p.prefix_list_ids.is_empty() {
                return Err(NetworkError::InvalidParameterValue(
                    "Nimbus's security groups take IPv4 ranges and security groups only (no Ipv6Ranges or PrefixListIds)".into(),
                ));
            }
            let proto = protocol(p.ip_protocol.as_deref().ok_or_else(|| NetworkError::MissingParameter("ipProtocol".into()))?)?;
            let (from, to) = ports(&proto, p.from_port, p.to_port)?;
            if p.ip_ranges.is_empty() && p.user_id_group_pairs.is_empty() {
                return Err(NetworkError::MissingParameter("ipPermissions.ipRanges or ipPermissions.groups".into()));
            }
            for r in p.ip_ranges {
                let text = r.cidr_ip.ok_or_else(|| NetworkError::MissingParameter("cidrIp".into()))?;
                let block = Cidr::parse(&text, false).ok_or_else(|| {
                    NetworkError::InvalidParameterValue(format!(
                        "Value ({text}) for parameter cidrIp is invalid. This is not a valid CIDR block."
                    ))
                })?;
                rules.push(RuleRecord {
                    id: new_id("sgr"),
                    protocol: proto.clone(),
                    from_port: from,
                    to_port: to,
                    peer: Peer::Cidr(block.to_string()),
                    description: r.description,
                });
            }
            for pair in p.user_id_group_pairs {
                let group = match (pair.group_id, pair.group_name) {
                    (Some(id), _) => id,
                    (None, Some(name)) => return Err(NetworkError::GroupNameNotFound(name)),
                    (None, None) => return Err(NetworkError::MissingParameter("groupId".into())),
                };
                if !st.groups.contains_key(&group) {
                    return Err(NetworkError::GroupNotFound(group));
                }
                rules.push(RuleRecord {
                    id: new_id("sgr"),
                    protocol: proto.clone(),
                    from_port: from,
                    to_port: to,
                    peer: Peer::Group(group),
                    description: pair.description,
                });
            }
        }
        Ok(rules)
    }

    /// AuthorizeSecurityGroupIngress / AuthorizeSecurityGroupEgress: adds rules; one that
    /// exists already is `InvalidPermission.Duplicate`, as on EC2.
    pub async fn authorize(
        self: &Arc<Self>,
        group: String,
        direction: Direction,
        perms: Vec<PermissionInput>,
    ) -> Result<Vec<SecurityGroupRule>, NetworkError> {
        self.change(move |svc, st| {
            let mut g = st.groups.get(&group).cloned().ok_or_else(|| NetworkError::GroupNotFound(group.clone()))?;
            let new = Self::rules_of(st, perms.clone())?;
            let list = match direction {
                Direction::Ingress => &mut g.ingress,
                Direction::Egress => &mut g.egress,
            };
            for r in &new {
                if list.iter().any(|old| same_rule(old, r)) {
                    return Err(NetworkError::PermissionDuplicate(describe_rule(r)));
                }
                list.push(r.clone());
            }
            if list.len() > MAX_RULES {
                return Err(NetworkError::RulesLimit);
            }
            let egress = direction == Direction::Egress;
            let out = new.iter().map(|r| svc.rule_info(&g.id, egress, r)).collect();
            Ok((out, vec![Change::PutGroup(g)]))
        })
        .await
    }

    /// RevokeSecurityGroupIngress / RevokeSecurityGroupEgress: removes the rules `perms`
    /// describe or `rule_ids` name; one that is not there is `InvalidPermission.NotFound`.
    pub async fn revoke(
        self: &Arc<Self>,
        group: String,
        direction: Direction,
        perms: Vec<PermissionInput>,
        rule_ids: Vec<String>,
    ) -> Result<Vec<RevokedRule>, NetworkError> {
        self.change(move |_, st| {
            let mut g = st.groups.get(&group).cloned().ok_or_else(|| NetworkError::GroupNotFound(group.clone()))?;
            let wanted = Self::rules_of(st, perms.clone())?;
            let list = match direction {
                Direction::Ingress => &mut g.ingress,
                Direction::Egress => &mut g.egress,
            };
            let mut revoked = Vec::new();
            for id in &rule_ids {
                let i = list.iter().position(|r| &r.id == id).ok_or_else(|| NetworkError::RuleNotFound(id.clone()))?;
                revoked.push(list.remove(i));
            }
            for w in &wanted {
                let i = list.iter().position(|r| same_rule(r, w)).ok_or(NetworkError::PermissionNotFound)?;
                revoked.push(list.remove(i));
            }
            let egress = direction == Direction::Egress;
            let out = revoked
                .iter()
                .map(|r| RevokedRule {
                    security_group_rule_id: r.id.clone(),
                    group_id: g.id.clone(),
                    is_egress: egress,
                    ip_protocol: r.protocol.clone(),
                    from_port: r.from_port.unwrap_or(-1),
                    to_port: r.to_port.unwrap_or(-1),
                    cidr_ipv4: match &r.peer {
                        Peer::Cidr(c) => Some(c.clone()),
                        Peer::Group(_) => None,
                    },
                    referenced_group_id: match &r.peer {
                        Peer::Group(id) => Some(id.clone()),
                        Peer::Cidr(_) => None,
                    },
                    description: r.description.clone(),
                })
                .collect();
            Ok((out, vec![Change::PutGroup(g)]))
        })
        .await
    }

    // ---- for Lambda and the data plane --------------------------------------------------

    /// A subnet, by id.
    pub fn subnet(&self, id: &str) -> Option<SubnetView> {
        let st = self.read();
        let s = st.subnets.get(id)?;
        Some(SubnetView { id: s.id.clone(), vpc: s.vpc.clone(), cidr: Cidr::parse(&s.cidr, true)? })
    }

    /// A VPC, by id.
    pub fn vpc(&self, id: &str) -> Option<VpcView> {
        let st = self.read();
        let v = st.vpcs.get(id)?;
        Some(VpcView { id: v.id.clone(), cidr: Cidr::parse(&v.cidr, true)? })
    }

    /// A security group with its rules, by id.
    pub fn group(&self, id: &str) -> Option<GroupRecord> {
        self.read().groups.get(id).cloned()
    }
}

/// The rule every new group starts with: all traffic out, anywhere.
fn allow_all_egress() -> RuleRecord {
    RuleRecord {
        id: new_id("sgr"),
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        peer: Peer::Cidr("0.0.0.0/0".into()),
        description: None,
    }
}

//! VPC networks, the domain: VPCs, their subnets and security groups (with their ingress and
//! egress rules) as EC2 describes them, kept in `<data>/network.db` (or, for nodes that
//! share a PostgreSQL database, in the account's schema there) through
//! [`store::NetworkStore`] and mirrored in memory. Lambda reads them to check a function's
//! `VpcConfig`, and the binary turns a function's subnets and groups into the data plane's
//! network plan (`nimbus_sandbox::network::VpcPlan`). No wire formats here:
//! `nimbus-api::ec2` decodes requests and encodes these typed answers.

mod cidr;
mod error;
mod filter;
mod service;
pub mod store;
#[cfg(test)]
mod tests;

pub use cidr::Cidr;
pub use error::NetworkError;
pub use filter::Filter;
pub use service::*;

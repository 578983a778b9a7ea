//! Table tests of the policy language against AWS's documented and recorded behaviour.

mod validation;

//! Reading the errors the services answer with.

use tonic_types::StatusExt;

/// The fields an INVALID_ARGUMENT names in its BadRequest details; `None`
/// when it carries no such details. Fails on any other code.
pub fn bad_request_fields(status: &tonic::Status) -> Option<Vec<String>> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
}

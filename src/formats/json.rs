//! The `json` format: the payload exactly as the vendor documents it, no
//! envelope, so a receiver written for that document works unchanged.

use bytes::Bytes;

use super::{EventData, RenderError, Rendered, Target};
use crate::catalog::Family;

/// UbiOps includes a request's result only up to 16 kB.
pub const MAX_RESULT_BYTES: usize = 16_384;

pub fn render(webhook: &Target, event: &EventData) -> Result<Rendered, RenderError> {
    let body = if event.family == Some(Family::Requests) {
        Bytes::from(request_body(webhook.include_result, &event.payload)?)
    } else {
        Bytes::copy_from_slice(event.payload.as_bytes())
    };
    Ok(Rendered {
        body,
        content_type: "application/json",
        url: None,
        headers: Vec::new(),
        accept: super::Acceptance::Success,
    })
}

/// The request family's `result` goes out only when the webhook asks for it
/// and its compact JSON is at most 16,384 bytes; otherwise the field is left out.
fn request_body(include_result: bool, payload: &str) -> Result<Vec<u8>, RenderError> {
    let mut value: serde_json::Value = serde_json::from_str(payload)?;
    let Some(fields) = value.as_object_mut() else {
        return Ok(payload.as_bytes().to_vec());
    };
    let Some(result) = fields.get("result") else {
        return Ok(payload.as_bytes().to_vec());
    };
    let keep = include_result && serde_json::to_vec(result)?.len() <= MAX_RESULT_BYTES;
    if keep {
        return Ok(payload.as_bytes().to_vec());
    }
    fields.shift_remove("result");
    Ok(serde_json::to_vec(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_with_result(result_len: usize) -> String {
        // A string result of n characters serialises to n + 2 bytes (its quotes).
        let result = "r".repeat(result_len - 2);
        serde_json::json!({"event": "deployment_request_completed", "request_id": "q", "result": result, "text": "t"})
            .to_string()
    }

    #[test]
    fn result_kept_up_to_16384_bytes_when_asked_for() {
        let at_limit = payload_with_result(MAX_RESULT_BYTES);
        assert_eq!(request_body(true, &at_limit).unwrap(), at_limit.as_bytes());
        let over = payload_with_result(MAX_RESULT_BYTES + 1);
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(true, &over).unwrap()).unwrap();
        assert!(body.get("result").is_none());
        assert_eq!(body["text"], "t");
    }

    #[test]
    fn result_left_out_when_not_asked_for_keeping_key_order() {
        let small = payload_with_result(10);
        let body = String::from_utf8(request_body(false, &small).unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"event":"deployment_request_completed","request_id":"q","text":"t"}"#
        );
    }
}

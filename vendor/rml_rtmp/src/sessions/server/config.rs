use rml_amf0::Amf0Value;
use std::collections::HashMap;

/// The configuration options that govern how a RTMP server session should operate
#[derive(Clone)]
pub struct ServerSessionConfig {
    pub fms_version: String,
    pub chunk_size: u32,
    pub peer_bandwidth: u32,
    pub window_ack_size: u32,
    pub send_on_bw_done_message_on_start: bool,
    /// Properties added to the command object of the answer to `connect` (`_result`),
    /// besides `fmsVer` and `capabilities`: where a server states what it supports, such
    /// as Enhanced RTMP's `fourCcList`, `videoFourCcInfoMap` and `capsEx` (added by
    /// sealcast; see FORK.md).
    pub connect_result_properties: HashMap<String, Amf0Value>,
}

impl ServerSessionConfig {
    /// Creates a new server session config with overridable defaults
    pub fn new() -> ServerSessionConfig {
        ServerSessionConfig {
            fms_version: "FMS/3,0,1,1233".to_string(),
            peer_bandwidth: 2_500_000,
            window_ack_size: 1_073_741_824,
            chunk_size: 4096,
            send_on_bw_done_message_on_start: true,
            connect_result_properties: HashMap::new(),
        }
    }
}

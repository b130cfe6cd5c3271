use super::PublishMode;

pub enum StreamState {
    Created,

    Publishing {
        stream_key: String,
        // Never read upstream either; allowed by sealcast's fork so that it builds quietly.
        #[allow(dead_code)]
        mode: PublishMode,
    },

    Playing {
        stream_key: String,
    },

    Completed,
}

pub struct ActiveStream {
    pub current_state: StreamState,
}

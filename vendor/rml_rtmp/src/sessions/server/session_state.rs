#[derive(Eq, PartialEq)]
pub enum SessionState {
    Started,
    Connected,
}

//! Container states (LXC's names and numeric order, `lxc:src/lxc/state.c`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A container state as reported by `lxrs info`/`ls` and the command socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Aborting,
    Freezing,
    Frozen,
    Thawed,
}

impl State {
    /// LXC's string name (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Stopping => "STOPPING",
            State::Aborting => "ABORTING",
            State::Freezing => "FREEZING",
            State::Frozen => "FROZEN",
            State::Thawed => "THAWED",
        }
    }

    /// All states in LXC's numeric order.
    pub const ALL: [State; 8] = [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Aborting,
        State::Freezing,
        State::Frozen,
        State::Thawed,
    ];

    /// Whether the monitor may move from `self` to `next` (the monitor's own transitions;
    /// freeze states are driven by the freezer and only checked loosely).
    pub fn can_become(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Stopped, Starting)
                | (Starting, Running)
                | (Starting, Aborting)
                | (Starting, Stopping)
                | (Aborting, Stopped)
                | (Running, Stopping)
                | (Running, Freezing)
                | (Freezing, Frozen)
                | (Freezing, Running)
                | (Frozen, Thawed)
                | (Frozen, Stopping)
                | (Thawed, Running)
                | (Thawed, Frozen)
                | (Stopping, Stopped)
                // reboot: the monitor restarts the container in place
                | (Stopping, Starting)
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown state name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown container state {0:?} (expected one of STOPPED STARTING RUNNING STOPPING ABORTING FREEZING FROZEN THAWED)")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!("running".parse::<State>().unwrap(), State::Running);
        assert!("RUNING".parse::<State>().is_err());
    }

    #[test]
    fn transitions() {
        use State::*;
        assert!(Stopped.can_become(Starting));
        assert!(Starting.can_become(Running));
        assert!(Starting.can_become(Aborting));
        assert!(Aborting.can_become(Stopped));
        assert!(Running.can_become(Stopping));
        assert!(Stopping.can_become(Stopped));
        assert!(Stopping.can_become(Starting), "reboot restarts in place");
        assert!(!Stopped.can_become(Running));
        assert!(!Running.can_become(Starting));
        assert!(!Aborting.can_become(Running));
    }
}

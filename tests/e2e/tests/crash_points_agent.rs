//! Crash consistency with the agent as the victim (issue 16): the local agent alone, or
//! the agent and the controller together, SIGKILLed at each point of a push
//! (`PAAS_TEST_KILL_AT=agent:<point>` / `both:<point>`, see
//! `controller/src/builder/leftovers.rs`). The checks are `crash_common::kill_at`'s: the
//! previous release serves (or the new one if it was committed), the interrupted build is
//! `failed`, no build job, build dir, cgroup, mount, veth or registry upload is left, one
//! agent runs, and the next push deploys. One test per point and victim, so a failure
//! names both.

mod crash_common;

use crash_common::{kill_at, Victim};

macro_rules! points {
    ($($name:ident: $victim:ident at $point:literal;)*) => {
        $(
            #[test]
            fn $name() {
                kill_at(Victim::$victim, $point);
            }
        )*
    };
}

points! {
    agent_killed_while_receiving: Agent at "receiving";
    agent_killed_while_building: Agent at "building";
    agent_killed_before_pushing_the_layer: Agent at "pushing-layer";
    agent_killed_during_the_release_command: Agent at "release-phase";
    agent_killed_right_after_the_release_is_made: Agent at "releasing";
    agent_killed_while_switching: Agent at "switching";
    agent_killed_while_draining: Agent at "draining";
    both_killed_while_receiving: Both at "receiving";
    both_killed_while_building: Both at "building";
    both_killed_before_pushing_the_layer: Both at "pushing-layer";
    both_killed_during_the_release_command: Both at "release-phase";
    both_killed_right_after_the_release_is_made: Both at "releasing";
    both_killed_while_switching: Both at "switching";
    both_killed_while_draining: Both at "draining";
}

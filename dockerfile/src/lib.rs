//! paas's own Dockerfile reader, with no I/O: [`parse`] reads a Dockerfile into
//! instructions (line continuations, comments, parser directives, JSON and shell forms;
//! what paas's builder does not do is refused naming the line), [`words`] expands `$VAR`
//! as Docker does, [`ignore`] applies `.dockerignore`, and [`plan`] turns instructions
//! and build args into the stages and steps a builder runs, with each step's image config
//! and cache input. The controller's `build::dockerfile` runs the plan.

pub mod ignore;
pub mod parse;
pub mod plan;
pub mod words;

pub use ignore::Ignore;
pub use parse::{parse, Command, Dockerfile, Instruction, ParseError};
pub use plan::{plan, Action, BaseImage, Bases, CopyFrom, ImageConfig, Plan, PlanError, Step};

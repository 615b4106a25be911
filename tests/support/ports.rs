//! Small stand-ins for the agent's ports where a test drives the agent
//! itself: a clock the test moves, and an SLO source with no SLIs.

use std::cell::Cell;
use std::rc::Rc;

use tailor::domain::WorkloadRef;
use tailor::guard::{ResourceSample, SliSample};
use tailor::ports::{Clock, PortError, SloSource};

/// Virtual time for the agent (unix seconds), moved by the test.
#[derive(Clone, Default)]
pub struct TestClock(pub Rc<Cell<i64>>);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.get()
    }
}

/// No SLI is configured and no resource signal is seen.
pub struct NoSlis;

impl SloSource for NoSlis {
    async fn slis(
        &self,
        _w: &WorkloadRef,
        _from: i64,
        _to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        Ok(None)
    }
    async fn resource_signals(
        &self,
        _w: &WorkloadRef,
        _from: i64,
        _to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        Ok(Vec::new())
    }
}

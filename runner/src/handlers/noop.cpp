// noop handler (see handlers/noop.h).
#include "handlers/noop.h"

namespace jobq {
namespace {

class NoopExecution : public Execution {
  public:
    NoopExecution(EventLoop &loop, DoneCallback done) : loop_(loop) {
        timer_ = loop_.After(Millis(0), [this, done = std::move(done)] {
            timer_ = 0;
            done(Outcome{});  // may destroy *this
        });
    }
    ~NoopExecution() override { loop_.Cancel(timer_); }

  private:
    EventLoop &loop_;
    EventLoop::TimerId timer_ = 0;
};

}  // namespace

std::unique_ptr<Execution> StartNoop(EventLoop &loop, DoneCallback done) {
    return std::make_unique<NoopExecution>(loop, std::move(done));
}

}  // namespace jobq

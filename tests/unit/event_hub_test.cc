// EventHub's notifier threads: every subscriber is woken once per publish,
// whichever thread owns it.
#include "service/event_hub.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace air {
namespace {

// Counts Wake() calls; the test waits on the shared mutex for all of them.
class CountingSubscriber final : public EventHub::Subscriber {
 public:
  CountingSubscriber(absl::Mutex* mu, int* woken_total) : mu_(mu), woken_total_(woken_total) {}
  void Wake() override {
    absl::MutexLock lock(mu_);
    if (wakes_++ == 0) ++*woken_total_;
  }
  void Tick(absl::Time) override {}
  void Close(const absl::Status&) override {}
  int wakes() const {
    absl::MutexLock lock(mu_);
    return wakes_;
  }

 private:
  absl::Mutex* const mu_;
  int* const woken_total_;
  int wakes_ = 0;
};

v1::Event EventWithSequence(int64_t sequence) {
  v1::Event event;
  event.set_sequence(sequence);
  return event;
}

class EventHubTest : public ::testing::TestWithParam<int> {};

TEST_P(EventHubTest, EveryShardWakesItsSubscribersOncePerPublish) {
  const int kSubscribers = 200;
  EventHub hub(/*head=*/0, /*ring_capacity=*/16, absl::Hours(1),
               /*notifier_threads=*/GetParam());
  absl::Mutex mu;
  int woken_total = 0;
  std::vector<std::shared_ptr<CountingSubscriber>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_shared<CountingSubscriber>(&mu, &woken_total));
    ASSERT_TRUE(hub.Subscribe(subscribers.back()).ok());
  }
  hub.Publish(std::vector<v1::Event>{EventWithSequence(1)});
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](int* total) { return *total == 200; }, &woken_total),
        absl::Seconds(30)))
        << woken_total << " of " << kSubscribers << " woken";
  }
  for (const auto& subscriber : subscribers) EXPECT_EQ(subscriber->wakes(), 1);
  EXPECT_EQ(hub.head(), 1);
}

INSTANTIATE_TEST_SUITE_P(NotifierThreads, EventHubTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace air

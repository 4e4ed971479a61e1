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
  // For conditions evaluated with the shared mutex held.
  int wakes_unlocked() const { return wakes_; }

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

// Subscribes `count` new subscribers that share `mu` and `woken_total`.
std::vector<std::shared_ptr<CountingSubscriber>> SubscribeCounting(EventHub& hub, int count,
                                                                   absl::Mutex* mu,
                                                                   int* woken_total) {
  std::vector<std::shared_ptr<CountingSubscriber>> subscribers;
  for (int i = 0; i < count; ++i) {
    subscribers.push_back(std::make_shared<CountingSubscriber>(mu, woken_total));
    EXPECT_TRUE(hub.Subscribe(subscribers.back()).ok());
  }
  return subscribers;
}

class EventHubTest : public ::testing::TestWithParam<int> {};

TEST_P(EventHubTest, EveryShardWakesItsSubscribersOncePerPublish) {
  const int kSubscribers = 200;
  EventHub hub(/*head=*/0, /*ring_capacity=*/16, absl::Hours(1),
               /*notifier_threads=*/GetParam());
  absl::Mutex mu;
  int woken_total = 0;
  const std::vector<std::shared_ptr<CountingSubscriber>> subscribers =
      SubscribeCounting(hub, kSubscribers, &mu, &woken_total);
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

// A change of membership between publishes must reach the notifiers before
// the next publish wakes anyone (however a hub keeps its subscribers).
TEST_P(EventHubTest, SubscribersAddedOrRemovedBetweenPublishesAreSeenByTheNext) {
  EventHub hub(/*head=*/0, /*ring_capacity=*/16, absl::Hours(1),
               /*notifier_threads=*/GetParam());
  absl::Mutex mu;
  int woken_total = 0;  // subscribers woken at least once
  auto wait_until = [&](CountingSubscriber* subscriber, int wakes) {
    absl::MutexLock lock(&mu);
    struct Args {
      CountingSubscriber* subscriber;
      int wakes;
    } args{subscriber, wakes};
    return mu.AwaitWithTimeout(
        absl::Condition(+[](Args* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return a->subscriber->wakes_unlocked() == a->wakes;
        }, &args),
        absl::Seconds(30));
  };
  const std::vector<std::shared_ptr<CountingSubscriber>> first =
      SubscribeCounting(hub, 100, &mu, &woken_total);
  hub.Publish(std::vector<v1::Event>{EventWithSequence(1)});
  for (const auto& subscriber : first) ASSERT_TRUE(wait_until(subscriber.get(), 1));

  // Removing alone: the removed ones are not woken again.
  for (size_t i = 0; i < first.size(); i += 2) hub.Unsubscribe(first[i].get());
  EXPECT_EQ(hub.subscriber_count(), 50u);
  hub.Publish(std::vector<v1::Event>{EventWithSequence(2)});
  for (size_t i = 1; i < first.size(); i += 2) ASSERT_TRUE(wait_until(first[i].get(), 2));
  for (size_t i = 0; i < first.size(); i += 2) EXPECT_EQ(first[i]->wakes(), 1) << i;

  // Adding alone: the new ones are woken by the next publish.
  const std::vector<std::shared_ptr<CountingSubscriber>> added =
      SubscribeCounting(hub, 30, &mu, &woken_total);
  hub.Publish(std::vector<v1::Event>{EventWithSequence(3)});
  for (const auto& subscriber : added) ASSERT_TRUE(wait_until(subscriber.get(), 1));
  for (size_t i = 1; i < first.size(); i += 2) ASSERT_TRUE(wait_until(first[i].get(), 3));
  for (size_t i = 0; i < first.size(); i += 2) EXPECT_EQ(first[i]->wakes(), 1) << i;

  hub.Suspend(absl::UnavailableError("test"));
  EXPECT_EQ(hub.subscriber_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(NotifierThreads, EventHubTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace air

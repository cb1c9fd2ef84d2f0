#pragma once
// A log-linear latency histogram in nanoseconds: exact below 1024 ns, then
// 128 sub-buckets per power of two (under 1% error), up to about 1100 s.
// One per bench thread; merged at the end.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace rendezvous::bench {

class histogram {
 public:
  static constexpr int linear = 1024;
  static constexpr int sub_bits = 7;
  static constexpr int max_exponent = 40;

  histogram() : counts_(index_of(std::uint64_t{1} << max_exponent) + 1) {}

  void add(std::int64_t value_ns) {
    auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(value_ns, 0));
    v = std::min<std::uint64_t>(v, (std::uint64_t{1} << max_exponent));
    ++counts_[index_of(v)];
    ++total_;
    max_ = std::max(max_, v);
  }

  void merge(const histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }

  // The value at quantile q in [0, 1] (the bucket's midpoint), 0 when empty.
  double quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint(i), static_cast<double>(max_));
    }
    return static_cast<double>(max_);
  }

 private:
  static std::size_t index_of(std::uint64_t v) {
    if (v < linear) return static_cast<std::size_t>(v);
    int exponent = std::bit_width(v) - 1;  // >= 10
    auto sub = (v >> (exponent - sub_bits)) & ((1u << sub_bits) - 1);
    return linear + static_cast<std::size_t>(exponent - 10) * (1u << sub_bits) +
           static_cast<std::size_t>(sub);
  }

  static double midpoint(std::size_t index) {
    if (index < linear) return static_cast<double>(index);
    auto rel = index - linear;
    int exponent = static_cast<int>(rel >> sub_bits) + 10;
    auto sub = rel & ((1u << sub_bits) - 1);
    double width = static_cast<double>(std::uint64_t{1} << (exponent - sub_bits));
    double low = static_cast<double>((std::uint64_t{1} << exponent) +
                                     sub * (std::uint64_t{1} << (exponent - sub_bits)));
    return low + width / 2;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace rendezvous::bench

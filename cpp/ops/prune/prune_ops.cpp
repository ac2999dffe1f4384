// CPU kernels of the pruning ops: magnitude selection across tensors and sparse Linear.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "../common.h"
#include "wattwise/prune/select.h"
#include "wattwise/prune/sparse_linear.h"

namespace wattwise::ops {
namespace {

// Core errors are std::invalid_argument; the ops surface them as ValueError with the op name.
template <class Fn>
auto core(const char* op, Fn&& fn) {
  try {
    return fn();
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, op, ": ", e.what());
  }
}

void check_float_cpu(const char* op, const char* arg, const at::Tensor& t) {
  check_cpu(op, arg, t);
  check_dtype(op, arg, t, at::kFloat);
}

uint32_t to_bits(const char* op, int64_t bits) {
  TORCH_CHECK_VALUE(bits >= 0 && bits <= 0x7fffffffLL, op,
                    ": threshold_bits must be in [0, 2^31), got ", bits);
  return static_cast<uint32_t>(bits);
}

std::tuple<int64_t, int64_t> kth_magnitude(at::TensorList tensors, int64_t k) {
  const char* op = "prune_kth_magnitude";
  std::vector<at::Tensor> keep;
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  keep.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_float_cpu(op, "tensors[i]", tensors[i]);
    keep.push_back(tensors[i].contiguous());
    ptrs.push_back(keep.back().const_data_ptr<float>());
    sizes.push_back(keep.back().numel());
  }
  sync_num_threads();
  const auto r = core(op, [&] {
    return prune::kth_magnitude(ptrs.data(), sizes.data(), static_cast<int64_t>(ptrs.size()), k);
  });
  return {static_cast<int64_t>(r.threshold_bits), r.ties};
}

std::tuple<at::Tensor, int64_t, int64_t> magnitude_mask(const at::Tensor& weight,
                                                        int64_t threshold_bits, int64_t ties) {
  const char* op = "prune_magnitude_mask";
  check_float_cpu(op, "weight", weight);
  const uint32_t t = to_bits(op, threshold_bits);
  const at::Tensor w = weight.contiguous();
  at::Tensor keep = at::empty(w.sizes(), w.options().dtype(at::kBool));
  sync_num_threads();
  int64_t pruned = 0;
  const int64_t left = core(op, [&] {
    return prune::magnitude_mask(w.const_data_ptr<float>(), w.numel(), t, ties,
                                 reinterpret_cast<uint8_t*>(keep.mutable_data_ptr<bool>()),
                                 &pruned);
  });
  return {keep, left, pruned};
}

std::tuple<int64_t, int64_t> magnitude_zero_(at::Tensor& weight, int64_t threshold_bits,
                                             int64_t ties) {
  const char* op = "prune_magnitude_zero_";
  check_float_cpu(op, "weight", weight);
  TORCH_CHECK_VALUE(weight.is_contiguous(), op, ": weight must be contiguous");
  const uint32_t t = to_bits(op, threshold_bits);
  sync_num_threads();
  int64_t pruned = 0;
  const int64_t left = core(op, [&] {
    return prune::magnitude_zero(weight.mutable_data_ptr<float>(), weight.numel(), t, ties,
                                 &pruned);
  });
  return {left, pruned};
}

at::Tensor csr_linear(const at::Tensor& input, const at::Tensor& row_ptr, const at::Tensor& col,
                      const at::Tensor& values, int64_t in_features,
                      const std::optional<at::Tensor>& bias) {
  const char* op = "sparse_csr_linear";
  check_cpu(op, "row_ptr", row_ptr);
  check_dtype(op, "row_ptr", row_ptr, at::kInt);
  check_dim(op, "row_ptr", row_ptr, 1);
  check_cpu(op, "col", col);
  check_dtype(op, "col", col, at::kShort);
  check_dim(op, "col", col, 1);
  check_float_cpu(op, "values", values);
  check_dim(op, "values", values, 1);
  TORCH_CHECK_VALUE(in_features >= 0 && in_features <= prune::kCsrMaxCols, op,
                    ": in_features must be in [0, 65536], got ", in_features);
  TORCH_CHECK_VALUE(row_ptr.size(0) >= 1, op, ": row_ptr must hold out_features + 1 entries");
  const int64_t n = row_ptr.size(0) - 1;
  const at::Tensor rp = row_ptr.contiguous(), c = col.contiguous(), v = values.contiguous();
  const int32_t nnz = rp.const_data_ptr<int32_t>()[n];
  TORCH_CHECK_VALUE(c.numel() == nnz && v.numel() == nnz, op, ": row_ptr[-1]=", nnz,
                    " must equal the length of col (", c.numel(), ") and values (", v.numel(), ")");
  core(op, [&] {
    prune::check_row_ptr(rp.const_data_ptr<int32_t>(), n, nnz);
    return 0;
  });
  const LinearOperands io = linear_operands(op, input, in_features, n, bias);
  core(op, [&] {
    prune::csr_linear(io.x.const_data_ptr<float>(), io.m, in_features, rp.const_data_ptr<int32_t>(),
                      reinterpret_cast<const uint16_t*>(c.const_data_ptr<int16_t>()),
                      v.const_data_ptr<float>(), optional_data(io.b), n,
                      io.y.mutable_data_ptr<float>());
    return 0;
  });
  return io.y;
}

at::Tensor nm_linear(const at::Tensor& input, const at::Tensor& values, const at::Tensor& idx,
                     int64_t nn, int64_t mm, const std::optional<at::Tensor>& bias) {
  const char* op = "sparse_nm_linear";
  check_float_cpu(op, "values", values);
  check_dim(op, "values", values, 2);
  check_cpu(op, "idx", idx);
  check_dtype(op, "idx", idx, at::kByte);
  TORCH_CHECK_VALUE(idx.sizes() == values.sizes(), op, ": idx shape ", idx.sizes(),
                    " must equal values shape ", values.sizes());
  TORCH_CHECK_VALUE(nn >= 1 && mm >= nn && mm <= 255, op, ": need 1 <= N <= M <= 255, got N=", nn,
                    " M=", mm);
  TORCH_CHECK_VALUE(values.size(1) % nn == 0, op, ": values' second dimension (", values.size(1),
                    ") must be a multiple of N=", nn);
  const int64_t n = values.size(0), k = values.size(1) / nn * mm;
  const at::Tensor v = values.contiguous(), ix = idx.contiguous();
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  core(op, [&] {
    prune::nm_linear(io.x.const_data_ptr<float>(), io.m, k, v.const_data_ptr<float>(),
                     ix.const_data_ptr<uint8_t>(), nn, mm, optional_data(io.b), n,
                     io.y.mutable_data_ptr<float>());
    return 0;
  });
  return io.y;
}

}  // namespace

TORCH_LIBRARY_IMPL(wattwise, CPU, m) {
  m.impl("prune_kth_magnitude", kth_magnitude);
  m.impl("prune_magnitude_mask", magnitude_mask);
  m.impl("prune_magnitude_zero_", magnitude_zero_);
  m.impl("sparse_csr_linear", csr_linear);
  m.impl("sparse_nm_linear", nm_linear);
}

}  // namespace wattwise::ops

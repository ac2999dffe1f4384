// CPU kernels of the int8 x int8 and half-precision-weight Linear ops: checks, then the
// torch-free core.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <vector>

#include "../common.h"
#include "wattwise/quant/dynamic_int8.h"

namespace wattwise::ops {
namespace {

void check_int8_weight(const char* op, const at::Tensor& qweight, const at::Tensor& scales) {
  check_cpu(op, "qweight", qweight);
  check_dtype(op, "qweight", qweight, at::kChar);
  check_dim(op, "qweight", qweight, 2);
  check_cpu(op, "scales", scales);
  check_dtype(op, "scales", scales, at::kFloat);
  TORCH_CHECK_VALUE(scales.dim() == 1 && scales.size(0) == qweight.size(0), op,
                    ": scales must have shape [", qweight.size(0), "], got ", scales.sizes());
}

at::Tensor int8_dynamic_linear(const at::Tensor& input, const at::Tensor& qweight,
                               const at::Tensor& scales, const std::optional<at::Tensor>& bias) {
  const char* op = "int8_dynamic_linear";
  check_int8_weight(op, qweight, scales);
  const int64_t n = qweight.size(0), k = qweight.size(1);
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous();
  quant::int8_dynamic_linear(io.x.const_data_ptr<float>(), io.m, k, q.const_data_ptr<int8_t>(),
                             s.const_data_ptr<float>(), optional_data(io.b), n,
                             io.y.mutable_data_ptr<float>());
  return io.y;
}

at::Tensor int8_static_linear(const at::Tensor& input, const at::Tensor& qweight,
                              const at::Tensor& scales, const at::Tensor& wsum, double input_scale,
                              int64_t input_zero_point, int64_t quant_min, int64_t quant_max,
                              const std::optional<at::Tensor>& bias) {
  const char* op = "int8_static_linear";
  check_int8_weight(op, qweight, scales);
  const int64_t n = qweight.size(0), k = qweight.size(1);
  check_cpu(op, "wsum", wsum);
  check_dtype(op, "wsum", wsum, at::kInt);
  TORCH_CHECK_VALUE(wsum.dim() == 1 && wsum.size(0) == n, op, ": wsum must have shape [", n,
                    "], got ", wsum.sizes());
  try {
    quant::check_static_qparams(static_cast<float>(input_scale), input_zero_point, quant_min,
                                quant_max);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, op, ": ", e.what());
  }
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous(), ws = wsum.contiguous();
  quant::int8_static_linear(io.x.const_data_ptr<float>(), io.m, k, static_cast<float>(input_scale),
                            input_zero_point, quant_min, quant_max, q.const_data_ptr<int8_t>(),
                            s.const_data_ptr<float>(), ws.const_data_ptr<int32_t>(),
                            optional_data(io.b), n, io.y.mutable_data_ptr<float>());
  return io.y;
}

at::Tensor int8_row_sums(const at::Tensor& qweight) {
  const char* op = "int8_row_sums";
  check_cpu(op, "qweight", qweight);
  check_dtype(op, "qweight", qweight, at::kChar);
  check_dim(op, "qweight", qweight, 2);
  const at::Tensor q = qweight.contiguous();
  at::Tensor out = at::empty({q.size(0)}, q.options().dtype(at::kInt));
  quant::int8_row_sums(q.const_data_ptr<int8_t>(), q.size(0), q.size(1),
                       out.mutable_data_ptr<int32_t>());
  return out;
}

at::Tensor half_weight_linear(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias) {
  const char* op = "half_weight_linear";
  check_cpu(op, "weight", weight);
  check_dim(op, "weight", weight, 2);
  const at::ScalarType t = weight.scalar_type();
  TORCH_CHECK_TYPE(t == at::kHalf || t == at::kBFloat16, op,
                   ": weight must be Half or BFloat16, got ", t);
  const int64_t n = weight.size(0), k = weight.size(1);
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  const at::Tensor w = weight.contiguous();
  const auto format = t == at::kHalf ? quant::HalfFormat::kFloat16 : quant::HalfFormat::kBFloat16;
  // Both 16-bit formats are read as raw bit patterns by the core.
  const auto* bits = static_cast<const uint16_t*>(w.const_data_ptr());
  quant::half_linear(io.x.const_data_ptr<float>(), io.m, k, bits, format, optional_data(io.b), n,
                     io.y.mutable_data_ptr<float>());
  return io.y;
}

}  // namespace

TORCH_LIBRARY_IMPL(wattwise, CPU, m) {
  m.impl("int8_dynamic_linear", &int8_dynamic_linear);
  m.impl("int8_static_linear", &int8_static_linear);
  m.impl("int8_row_sums", &int8_row_sums);
  m.impl("half_weight_linear", &half_weight_linear);
}

}  // namespace wattwise::ops

/* ggml's own CPU GEMV as a C loop over rows, for bench.ggml_gemv: y[r] = vec_dot(row r of W, quantized x).
 *
 * The activation is converted to the type's vec_dot_type by its from_float (as ggml_compute_forward_mul_mat
 * does once per call), then ggml's vec_dot runs on every row; no Python call per row is timed. One thread: the
 * loop is serial. The few declarations needed from ggml.h / ggml-cpu.h are written out here (they match
 * llama-cpp-python 0.3.36's ggml) so that the file builds without the headers; bench.ggml_gemv checks the
 * result against gguf's dequantization before any timing. */
#include <stddef.h>
#include <stdint.h>

typedef void (*ggml_from_float_t)(const float *x, void *y, int64_t k);
typedef void (*ggml_vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                               int nrc);
struct ggml_type_traits_cpu {   /* ggml-cpu.h */
    ggml_from_float_t from_float;
    ggml_vec_dot_t vec_dot;
    int vec_dot_type;           /* enum ggml_type */
    int64_t nrows;
};
extern const struct ggml_type_traits_cpu *ggml_get_type_traits_cpu(int type);
extern void ggml_cpu_init(void);
extern size_t ggml_row_size(int type, int64_t ne);

void q35b_init(void) { ggml_cpu_init(); }

int q35b_vec_dot_type(int type) { return ggml_get_type_traits_cpu(type)->vec_dot_type; }

/* Bytes of one row of k activations in the type's vec_dot_type (the scratch q35b_gemv needs). */
size_t q35b_x_bytes(int type, int64_t k) { return ggml_row_size(q35b_vec_dot_type(type), k); }

/* x (k floats) -> xq (q35b_x_bytes), then y[r] = W[r, :] . x for r < n_rows; w holds n_rows rows of
 * ggml_row_size(type, k) bytes. Returns 0, or -1 when the type has no CPU vec_dot. */
int q35b_gemv(int type, int64_t n_rows, int64_t k, const void *w, const float *x, void *xq, float *y) {
    const struct ggml_type_traits_cpu *t = ggml_get_type_traits_cpu(type);
    const struct ggml_type_traits_cpu *tx = ggml_get_type_traits_cpu(t->vec_dot_type);
    if (t->vec_dot == NULL || (t->vec_dot_type != 0 && tx->from_float == NULL)) return -1;
    if (t->vec_dot_type == 0) {         /* GGML_TYPE_F32: the activation is used as it is */
        xq = (void *)x;
    } else {
        tx->from_float(x, xq, k);
    }
    const size_t rb = ggml_row_size(type, k);
    const char *wr = (const char *)w;
    for (int64_t r = 0; r < n_rows; r++) t->vec_dot((int)k, &y[r], 0, wr + (size_t)r * rb, 0, xq, 0, 1);
    return 0;
}

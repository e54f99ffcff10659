namespace Vae.Core

#nowarn "9" // native pointers: the kernels read and write tensor memory directly
#nowarn "51"

open System
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop
open TorchSharp

/// Single-pass kernels over CPU tensor memory for the mixed-precision AEVB step (FusedAevb). Each reads one layer's
/// bfloat16 product once and writes what the next multiply and the gradient need: at the paper's shapes that replaces
/// three to ten libtorch calls of 7-25 µs each, which were most of the bfloat16 step outside its multiplies. They run on
/// the calling thread in 512-bit vectors (one element at a time where the machine lacks them, and for row tails), and
/// accumulate sums row by row in a fixed order, so results are deterministic.
[<RequireQualifiedAccess>]
module Kernels =

    /// The address of a contiguous CPU tensor's first element; raises ArgumentException naming the tensor and what
    /// was expected when it is not a contiguous CPU tensor of that dtype.
    let address<'T when 'T: unmanaged> (purpose: string) (name: string) (dtype: torch.ScalarType) (t: Tensor) : nativeptr<'T> =
        if t.dtype <> dtype || t.device_type <> DeviceType.CPU || not (t.is_contiguous()) then
            invalidArg name (sprintf "%s needs a contiguous %O CPU tensor; %s is %O on %O%s"
                                 purpose dtype name t.dtype t.device_type (if t.is_contiguous() then "" else ", not contiguous"))
        let bytes = t.bytes // a view of the tensor's memory, not a copy
        NativePtr.ofNativeInt (NativePtr.toNativeInt &&(MemoryMarshal.GetReference bytes))

    let private purpose = "a mixed-precision kernel"
    let private f32 name t = address<float32> purpose name torch.float32 t
    let private bf16 name t = address<uint16> purpose name torch.bfloat16 t

    /// Raises ArgumentException unless t has exactly rows x cols elements.
    let private requireSize (name: string) (rows: int) (cols: int) (t: Tensor) =
        if t.numel() <> int64 rows * int64 cols then
            invalidArg name (sprintf "%s has %d elements; expected %d x %d" name (t.numel()) rows cols)

    let private vectors = Vector512.IsHardwareAccelerated
    let [<Literal>] private Lanes = 16

    /// float32 -> bfloat16 rounded to nearest, ties to even, NaN kept (libtorch's conversion).
    let private toBf16 (f: float32) : uint16 =
        if Single.IsNaN f then 0x7FC0us
        else
            let bits = BitConverter.SingleToUInt32Bits f
            uint16 ((bits + 0x7FFFu + ((bits >>> 16) &&& 1u)) >>> 16)

    let private ofBf16 (b: uint16) : float32 = BitConverter.UInt32BitsToSingle(uint32 b <<< 16)

    let inline private storeBf16 (v: Vector512<float32>) (p: nativeptr<uint16>) =
        let bits = v.AsUInt32()
        let lsb = Vector512.BitwiseAnd(Vector512.ShiftRightLogical(bits, 16), Vector512.Create 1u)
        let rounded = Vector512.ShiftRightLogical(bits + Vector512.Create 0x7FFFu + lsb, 16)
        let kept = Vector512.ConditionalSelect(Vector512.Equals(v, v).AsUInt32(), rounded, Vector512.Create 0x7FC0u)
        Vector512.Narrow(kept, Vector512<uint32>.Zero).GetLower().Store(p)

    let inline private loadBf16 (p: nativeptr<uint16>) : Vector512<float32> =
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()), 16).AsSingle()

    /// tanh a = e / (e + 2) with e = expm1(2|a|), expm1 by Kahan's exp-log correction (within a few units in the
    /// last place of float32 near 0, where exp(2a) - 1 alone loses them); NaN stays NaN.
    let inline private tanhV (a: Vector512<float32>) =
        let one = Vector512.Create 1.0f
        let y = Vector512.Min(Vector512.Abs a * Vector512.Create 2.0f, Vector512.Create 40.0f)
        let u = Vector512.Exp y
        let e = Vector512.ConditionalSelect(Vector512.Equals(u, one), y, (u - one) * (y / Vector512.Log u))
        let t = e / (e + Vector512.Create 2.0f)
        let signed = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512<float32>.Zero), -t, t)
        Vector512.ConditionalSelect(Vector512.Equals(a, a), signed, a)

    /// h = tanh(product + bias) for a layer's bfloat16 product [R; C] and float32 bias [C]: writes h in float32
    /// [R; C] and rounded to bfloat16 as hLow [R; C] (the next multiply's operand).
    let tanhLayer (product: Tensor) (bias: Tensor) (h: Tensor) (hLow: Tensor) =
        let rows, cols = int product.shape.[0], int product.shape.[1]
        requireSize "bias" 1 cols bias
        requireSize "h" rows cols h
        requireSize "hLow" rows cols hLow
        let p, b, hp, lp = bf16 "product" product, f32 "bias" bias, f32 "h" h, bf16 "hLow" hLow
        for r in 0 .. rows - 1 do
            let o = r * cols
            let mutable j = 0
            if vectors then
                while j + Lanes <= cols do
                    let t = tanhV (loadBf16 (NativePtr.add p (o + j)) + Vector512.Load(NativePtr.add b j))
                    t.Store(NativePtr.add hp (o + j))
                    storeBf16 t (NativePtr.add lp (o + j))
                    j <- j + Lanes
            while j < cols do
                let t = MathF.Tanh(ofBf16 (NativePtr.get p (o + j)) + NativePtr.get b j)
                NativePtr.set hp (o + j) t
                NativePtr.set lp (o + j) (toBf16 t)
                j <- j + 1

    /// Backpropagation through h = tanh(a): da = dh (1 - h^2) for dh a bfloat16 product [R; C] and h float32 [R; C].
    /// Writes da rounded to bfloat16 as daLow [R; C] and the bias gradient sum_r da [C] (float32, unrounded da).
    let tanhBackward (dh: Tensor) (h: Tensor) (daLow: Tensor) (biasGradient: Tensor) =
        let rows, cols = int dh.shape.[0], int dh.shape.[1]
        requireSize "h" rows cols h
        requireSize "daLow" rows cols daLow
        requireSize "biasGradient" 1 cols biasGradient
        let d, hp, lp, gb = bf16 "dh" dh, f32 "h" h, bf16 "daLow" daLow, f32 "biasGradient" biasGradient
        for j in 0 .. cols - 1 do NativePtr.set gb j 0.0f
        for r in 0 .. rows - 1 do
            let o = r * cols
            let mutable j = 0
            if vectors then
                while j + Lanes <= cols do
                    let dv = loadBf16 (NativePtr.add d (o + j))
                    let hv = Vector512.Load(NativePtr.add hp (o + j))
                    let da = Vector512.FusedMultiplyAdd(-dv, hv * hv, dv)
                    storeBf16 da (NativePtr.add lp (o + j))
                    (Vector512.Load(NativePtr.add gb j) + da).Store(NativePtr.add gb j)
                    j <- j + Lanes
            while j < cols do
                let dv = ofBf16 (NativePtr.get d (o + j))
                let hv = NativePtr.get hp (o + j)
                let da = MathF.FusedMultiplyAdd(-dv, hv * hv, dv)
                NativePtr.set lp (o + j) (toBf16 da)
                NativePtr.set gb j (NativePtr.get gb j + da)
                j <- j + 1

    /// The Bernoulli decoder's output layer for logits = product + bias (product bfloat16 [R; D], bias float32 [D]) and
    /// data x float32 [R; D]: returns sum -log p(x|z) = sum softplus(l) - x l over all elements (in float64 across rows);
    /// writes d/dlogits = x - sigmoid(l) rounded to bfloat16 as deltaLow [R; D], and its column sums [D] (float32,
    /// unrounded) as biasGradient.
    let bernoulliOutput (product: Tensor) (bias: Tensor) (x: Tensor) (deltaLow: Tensor) (biasGradient: Tensor) : float =
        let rows, cols = int product.shape.[0], int product.shape.[1]
        requireSize "bias" 1 cols bias
        requireSize "x" rows cols x
        requireSize "deltaLow" rows cols deltaLow
        requireSize "biasGradient" 1 cols biasGradient
        let p, b, xp, lp, gb = bf16 "product" product, f32 "bias" bias, f32 "x" x, bf16 "deltaLow" deltaLow, f32 "biasGradient" biasGradient
        for j in 0 .. cols - 1 do NativePtr.set gb j 0.0f
        let mutable total = 0.0
        for r in 0 .. rows - 1 do
            let o = r * cols
            let mutable j = 0
            let mutable rowSum = 0.0f
            if vectors then
                let one = Vector512.Create 1.0f
                let mutable acc = Vector512<float32>.Zero
                while j + Lanes <= cols do
                    let y = loadBf16 (NativePtr.add p (o + j)) + Vector512.Load(NativePtr.add b j)
                    let xv = Vector512.Load(NativePtr.add xp (o + j))
                    // softplus(y) = max(y, 0) + log1p(e), e = exp(-|y|); log1p(e) = log(w) e / (w - 1), w = 1 + e.
                    let e = Vector512.Exp(-(Vector512.Abs y))
                    let w = one + e
                    let log1p = Vector512.ConditionalSelect(Vector512.Equals(w, one), e, Vector512.Log w * (e / (w - one)))
                    acc <- acc + (Vector512.Max(y, Vector512<float32>.Zero) + log1p - xv * y)
                    // sigmoid(y) = 1 / w for y >= 0, e / w below.
                    let sigmoid = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(y, Vector512<float32>.Zero), one, e) / w
                    let delta = xv - sigmoid
                    storeBf16 delta (NativePtr.add lp (o + j))
                    (Vector512.Load(NativePtr.add gb j) + delta).Store(NativePtr.add gb j)
                    j <- j + Lanes
                rowSum <- Vector512.Sum acc
            while j < cols do
                let y = ofBf16 (NativePtr.get p (o + j)) + NativePtr.get b j
                let xv = NativePtr.get xp (o + j)
                let e = MathF.Exp(-(abs y))
                rowSum <- rowSum + (if y > 0.0f then y else 0.0f) + float32 (Math.Log(1.0 + float e)) - xv * y
                let delta = xv - (if y >= 0.0f then 1.0f else e) / (1.0f + e)
                NativePtr.set lp (o + j) (toBf16 delta)
                NativePtr.set gb j (NativePtr.get gb j + delta)
                j <- j + 1
            total <- total + float rowSum
        total

    /// The Gaussian encoder's output and the reparameterisation (eq. 10), for heads = product + bias (product bfloat16
    /// [R; 2J], the means then the log-variances; bias float32 [2J]) and noise eps float32 [R; J]: sigma = exp(log sigma^2 / 2),
    /// z = mu + sigma eps. Writes mu and sigma to latent float32 [R; 2J] (for latentBackward) and z rounded to bfloat16 as
    /// zLow [R; J]; returns the minibatch's KL(q || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1) (Appendix B).
    let latentForward (product: Tensor) (bias: Tensor) (eps: Tensor) (latent: Tensor) (zLow: Tensor) : float =
        let rows, j2 = int product.shape.[0], int product.shape.[1]
        let j = j2 / 2
        requireSize "bias" 1 j2 bias
        requireSize "eps" rows j eps
        requireSize "latent" rows j2 latent
        requireSize "zLow" rows j zLow
        let p, b, ep, lat, zp = bf16 "product" product, f32 "bias" bias, f32 "eps" eps, f32 "latent" latent, bf16 "zLow" zLow
        let mutable kl = 0.0
        for r in 0 .. rows - 1 do
            for k in 0 .. j - 1 do
                let mu = ofBf16 (NativePtr.get p (r * j2 + k)) + NativePtr.get b k
                let logVar = ofBf16 (NativePtr.get p (r * j2 + j + k)) + NativePtr.get b (j + k)
                let sd = MathF.Exp(logVar * 0.5f)
                NativePtr.set lat (r * j2 + k) mu
                NativePtr.set lat (r * j2 + j + k) sd
                NativePtr.set zp (r * j + k) (toBf16 (MathF.FusedMultiplyAdd(sd, NativePtr.get ep (r * j + k), mu)))
                kl <- kl + float (mu * mu + sd * sd - logVar - 1.0f)
        kl * 0.5

    /// Backpropagation of the bound to the encoder's heads, for dz (the decoder's gradient with respect to z, a bfloat16
    /// product [R; J]) and latentForward's mu and sigma: d/dmu = dz - mu, d/dlog sigma^2 = (dz eps sigma - sigma^2 + 1) / 2
    /// (the KL's terms included). Writes them rounded to bfloat16 as headsLow [R; 2J] and their column sums [2J] (float32,
    /// unrounded) as biasGradient.
    let latentBackward (dz: Tensor) (latent: Tensor) (eps: Tensor) (headsLow: Tensor) (biasGradient: Tensor) =
        let rows, j = int dz.shape.[0], int dz.shape.[1]
        let j2 = 2 * j
        requireSize "latent" rows j2 latent
        requireSize "eps" rows j eps
        requireSize "headsLow" rows j2 headsLow
        requireSize "biasGradient" 1 j2 biasGradient
        let d, lat, ep, hp, gb = bf16 "dz" dz, f32 "latent" latent, f32 "eps" eps, bf16 "headsLow" headsLow, f32 "biasGradient" biasGradient
        for k in 0 .. j2 - 1 do NativePtr.set gb k 0.0f
        for r in 0 .. rows - 1 do
            for k in 0 .. j - 1 do
                let dzv = ofBf16 (NativePtr.get d (r * j + k))
                let mu, sd = NativePtr.get lat (r * j2 + k), NativePtr.get lat (r * j2 + j + k)
                let dMu = dzv - mu
                let dLogVar = (dzv * NativePtr.get ep (r * j + k) * sd - sd * sd + 1.0f) * 0.5f
                NativePtr.set hp (r * j2 + k) (toBf16 dMu)
                NativePtr.set hp (r * j2 + j + k) (toBf16 dLogVar)
                NativePtr.set gb k (NativePtr.get gb k + dMu)
                NativePtr.set gb (j + k) (NativePtr.get gb (j + k) + dLogVar)

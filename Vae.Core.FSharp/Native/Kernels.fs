namespace Vae.Core

#nowarn "9" // native pointers: the kernels read and write tensor memory directly
#nowarn "51"

open System
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop
open TorchSharp

/// Single-pass kernels over CPU tensor memory, in 512-bit vectors (one element at a time where the machine lacks them,
/// and for row tails), with sums accumulated in a fixed order, so results are deterministic.
/// - For the one-pass AEVB steps (HandDerivedSteps, bfloat16 or float32 multiplies): each reads one layer's product
///   once and writes what the next multiply and the gradient need, in place of several libtorch calls each. They run
///   on the calling thread.
/// - For the importance-weighted evaluation (ImportanceWeighted): the decoder's hidden layer and the softplus sum of its
///   output, over thousands of rows, split between libtorch's thread count by rows.
[<RequireQualifiedAccess>]
module internal Kernels =

    /// The address of a contiguous CPU tensor's first element; raises ArgumentException naming the tensor and what
    /// was expected when it is not a contiguous CPU tensor of that dtype.
    let address<'T when 'T: unmanaged> (purpose: string) (name: string) (dtype: torch.ScalarType) (t: Tensor) : nativeptr<'T> =
        if t.dtype <> dtype || t.device_type <> DeviceType.CPU || not (t.is_contiguous()) then
            invalidArg name (sprintf "%s needs a contiguous %O CPU tensor; %s is %O on %O%s"
                                 purpose dtype name t.dtype t.device_type (if t.is_contiguous() then "" else ", not contiguous"))
        let bytes = t.bytes // a view of the tensor's memory, not a copy
        NativePtr.ofNativeInt (NativePtr.toNativeInt &&(MemoryMarshal.GetReference bytes))

    let private purpose = "a one-pass kernel"
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

    /// An operand of the step kernels: a contiguous CPU tensor of bfloat16 (Low: the mixed-precision step's multiply
    /// operands and products) or float32 (the one-pass float32 step's), read and written as float32.
    [<Struct>]
    type private Cells = { Address: nativeint; Low: bool }

    let private cells (name: string) (t: Tensor) : Cells =
        if t.dtype = torch.bfloat16 then { Address = NativePtr.toNativeInt (bf16 name t); Low = true }
        else { Address = NativePtr.toNativeInt (address<float32> "a step kernel (bfloat16 or float32 operands)" name torch.float32 t); Low = false }

    let inline private load (c: Cells) (i: int) : Vector512<float32> =
        if c.Low then loadBf16 (NativePtr.add (NativePtr.ofNativeInt<uint16> c.Address) i)
        else Vector512.Load(NativePtr.add (NativePtr.ofNativeInt<float32> c.Address) i)

    let inline private store (c: Cells) (i: int) (v: Vector512<float32>) =
        if c.Low then storeBf16 v (NativePtr.add (NativePtr.ofNativeInt<uint16> c.Address) i)
        else v.Store(NativePtr.add (NativePtr.ofNativeInt<float32> c.Address) i)

    let inline private get (c: Cells) (i: int) : float32 =
        if c.Low then ofBf16 (NativePtr.get (NativePtr.ofNativeInt<uint16> c.Address) i)
        else NativePtr.get (NativePtr.ofNativeInt<float32> c.Address) i

    let inline private set (c: Cells) (i: int) (v: float32) =
        if c.Low then NativePtr.set (NativePtr.ofNativeInt<uint16> c.Address) i (toBf16 v)
        else NativePtr.set (NativePtr.ofNativeInt<float32> c.Address) i v

    /// tanh a: below |a| = 1/2 its Taylor series to a^17 (the next term is under 1e-9 of the sum there); above,
    /// 1 - 2 / (e^(2|a|) + 1), which cancels little once tanh |a| > 0.46. One exponential, one division, no logarithm;
    /// within a few float32 units (the property tests allow 8). NaN stays NaN.
    let inline private tanhV (a: Vector512<float32>) =
        let one = Vector512.Create 1.0f
        let x = Vector512.Abs a
        let s = a * a
        let mutable p = Vector512.Create(6404582.0f / 10854718875.0f)
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-929569.0f / 638512875.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(21844.0f / 6081075.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-1382.0f / 155925.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(62.0f / 2835.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-17.0f / 315.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(2.0f / 15.0f))
        p <- Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-1.0f / 3.0f))
        let series = Vector512.FusedMultiplyAdd(x * s, p, x)
        let far = one - Vector512.Create 2.0f / (Vector512.Exp(Vector512.Min(x + x, Vector512.Create 40.0f)) + one)
        let t = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create 0.5f), series, far)
        let signed = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512<float32>.Zero), -t, t)
        Vector512.ConditionalSelect(Vector512.Equals(a, a), signed, a)

    /// h = tanh(product + bias) for a layer's product [R; C] (bfloat16 or float32) and float32 bias [C]: writes h in
    /// float32 [R; C] and as hLow [R; C] (the next multiply's operand: rounded to bfloat16, or h itself in float32).
    let tanhLayer (product: Tensor) (bias: Tensor) (h: Tensor) (hLow: Tensor) =
        let rows, cols = int product.shape.[0], int product.shape.[1]
        requireSize "bias" 1 cols bias
        requireSize "h" rows cols h
        requireSize "hLow" rows cols hLow
        let p, b, hp, lp = cells "product" product, f32 "bias" bias, f32 "h" h, cells "hLow" hLow
        let separate = lp.Address <> NativePtr.toNativeInt hp
        for r in 0 .. rows - 1 do
            let o = r * cols
            let mutable j = 0
            if vectors then
                while j + Lanes <= cols do
                    let t = tanhV (load p (o + j) + Vector512.Load(NativePtr.add b j))
                    t.Store(NativePtr.add hp (o + j))
                    if separate then store lp (o + j) t
                    j <- j + Lanes
            while j < cols do
                let t = MathF.Tanh(get p (o + j) + NativePtr.get b j)
                NativePtr.set hp (o + j) t
                if separate then set lp (o + j) t
                j <- j + 1

    /// Backpropagation through h = tanh(a): da = dh (1 - h^2) for dh a product [R; C] (bfloat16 or float32) and h
    /// float32 [R; C]. Writes da as daLow [R; C] (rounded where bfloat16) and the bias gradient sum_r da [C] (float32,
    /// unrounded da).
    let tanhBackward (dh: Tensor) (h: Tensor) (daLow: Tensor) (biasGradient: Tensor) =
        let rows, cols = int dh.shape.[0], int dh.shape.[1]
        requireSize "h" rows cols h
        requireSize "daLow" rows cols daLow
        requireSize "biasGradient" 1 cols biasGradient
        let d, hp, lp, gb = cells "dh" dh, f32 "h" h, cells "daLow" daLow, f32 "biasGradient" biasGradient
        for j in 0 .. cols - 1 do NativePtr.set gb j 0.0f
        for r in 0 .. rows - 1 do
            let o = r * cols
            let mutable j = 0
            if vectors then
                while j + Lanes <= cols do
                    let dv = load d (o + j)
                    let hv = Vector512.Load(NativePtr.add hp (o + j))
                    let da = Vector512.FusedMultiplyAdd(-dv, hv * hv, dv)
                    store lp (o + j) da
                    (Vector512.Load(NativePtr.add gb j) + da).Store(NativePtr.add gb j)
                    j <- j + Lanes
            while j < cols do
                let dv = get d (o + j)
                let hv = NativePtr.get hp (o + j)
                let da = MathF.FusedMultiplyAdd(-dv, hv * hv, dv)
                set lp (o + j) da
                NativePtr.set gb j (NativePtr.get gb j + da)
                j <- j + 1

    /// The Bernoulli decoder's output layer for logits = product + bias (product [R; D] bfloat16 or float32, bias
    /// float32 [D]) and data x float32 [R; D]: returns sum -log p(x|z) = sum softplus(l) - x l over all elements (in
    /// float64 across rows); writes d/dlogits = x - sigmoid(l) as deltaLow [R; D] (rounded where bfloat16), and its
    /// column sums [D] (float32, unrounded) as biasGradient.
    let bernoulliOutput (product: Tensor) (bias: Tensor) (x: Tensor) (deltaLow: Tensor) (biasGradient: Tensor) : float =
        let rows, cols = int product.shape.[0], int product.shape.[1]
        requireSize "bias" 1 cols bias
        requireSize "x" rows cols x
        requireSize "deltaLow" rows cols deltaLow
        requireSize "biasGradient" 1 cols biasGradient
        let p, b, xp, lp, gb = cells "product" product, f32 "bias" bias, f32 "x" x, cells "deltaLow" deltaLow, f32 "biasGradient" biasGradient
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
                    let y = load p (o + j) + Vector512.Load(NativePtr.add b j)
                    let xv = Vector512.Load(NativePtr.add xp (o + j))
                    // softplus(y) = max(y, 0) + log1p(e), e = exp(-|y|); log1p(e) = log(w) e / (w - 1), w = 1 + e.
                    let e = Vector512.Exp(-(Vector512.Abs y))
                    let w = one + e
                    let log1p = Vector512.ConditionalSelect(Vector512.Equals(w, one), e, Vector512.Log w * (e / (w - one)))
                    acc <- acc + (Vector512.Max(y, Vector512<float32>.Zero) + log1p - xv * y)
                    // sigmoid(y) = 1 / w for y >= 0, e / w below.
                    let sigmoid = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(y, Vector512<float32>.Zero), one, e) / w
                    let delta = xv - sigmoid
                    store lp (o + j) delta
                    (Vector512.Load(NativePtr.add gb j) + delta).Store(NativePtr.add gb j)
                    j <- j + Lanes
                rowSum <- Vector512.Sum acc
            while j < cols do
                let y = get p (o + j) + NativePtr.get b j
                let xv = NativePtr.get xp (o + j)
                let e = MathF.Exp(-(abs y))
                rowSum <- rowSum + (if y > 0.0f then y else 0.0f) + float32 (Math.Log(1.0 + float e)) - xv * y
                let delta = xv - (if y >= 0.0f then 1.0f else e) / (1.0f + e)
                set lp (o + j) delta
                NativePtr.set gb j (NativePtr.get gb j + delta)
                j <- j + 1
            total <- total + float rowSum
        total

    /// The Gaussian encoder's output and the reparameterisation (eq. 10), for heads = product + bias (product [R; 2J]
    /// bfloat16 or float32, the means then the log-variances; bias float32 [2J]) and noise eps float32 [R; J]:
    /// sigma = exp(log sigma^2 / 2), z = mu + sigma eps. Writes mu and sigma to latent float32 [R; 2J] (for
    /// latentBackward) and z as zLow [R; J] (rounded where bfloat16); returns the minibatch's
    /// KL(q || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1) (Appendix B).
    let latentForward (product: Tensor) (bias: Tensor) (eps: Tensor) (latent: Tensor) (zLow: Tensor) : float =
        let rows, j2 = int product.shape.[0], int product.shape.[1]
        let j = j2 / 2
        requireSize "bias" 1 j2 bias
        requireSize "eps" rows j eps
        requireSize "latent" rows j2 latent
        requireSize "zLow" rows j zLow
        let p, b, ep, lat, zp = cells "product" product, f32 "bias" bias, f32 "eps" eps, f32 "latent" latent, cells "zLow" zLow
        let mutable kl = 0.0
        for r in 0 .. rows - 1 do
            for k in 0 .. j - 1 do
                let mu = get p (r * j2 + k) + NativePtr.get b k
                let logVar = get p (r * j2 + j + k) + NativePtr.get b (j + k)
                let sd = MathF.Exp(logVar * 0.5f)
                NativePtr.set lat (r * j2 + k) mu
                NativePtr.set lat (r * j2 + j + k) sd
                set zp (r * j + k) (MathF.FusedMultiplyAdd(sd, NativePtr.get ep (r * j + k), mu))
                kl <- kl + float (mu * mu + sd * sd - logVar - 1.0f)
        kl * 0.5

    /// Backpropagation of the bound to the encoder's heads, for dz (the decoder's gradient with respect to z, a product
    /// [R; J], bfloat16 or float32) and latentForward's mu and sigma: d/dmu = dz - mu, d/dlog sigma^2 =
    /// (dz eps sigma - sigma^2 + 1) / 2 (the KL's terms included). Writes them as headsLow [R; 2J] (rounded where
    /// bfloat16) and their column sums [2J] (float32, unrounded) as biasGradient.
    let latentBackward (dz: Tensor) (latent: Tensor) (eps: Tensor) (headsLow: Tensor) (biasGradient: Tensor) =
        let rows, j = int dz.shape.[0], int dz.shape.[1]
        let j2 = 2 * j
        requireSize "latent" rows j2 latent
        requireSize "eps" rows j eps
        requireSize "headsLow" rows j2 headsLow
        requireSize "biasGradient" 1 j2 biasGradient
        let d, lat, ep, hp, gb = cells "dz" dz, f32 "latent" latent, f32 "eps" eps, cells "headsLow" headsLow, f32 "biasGradient" biasGradient
        for k in 0 .. j2 - 1 do NativePtr.set gb k 0.0f
        for r in 0 .. rows - 1 do
            for k in 0 .. j - 1 do
                let dzv = get d (r * j + k)
                let mu, sd = NativePtr.get lat (r * j2 + k), NativePtr.get lat (r * j2 + j + k)
                let dMu = dzv - mu
                let dLogVar = (dzv * NativePtr.get ep (r * j + k) * sd - sd * sd + 1.0f) * 0.5f
                set hp (r * j2 + k) dMu
                set hp (r * j2 + j + k) dLogVar
                NativePtr.set gb k (NativePtr.get gb k + dMu)
                NativePtr.set gb (j + k) (NativePtr.get gb (j + k) + dLogVar)

    /// Runs body first count over [0, n) cut into blocks of block elements, on as many workers as libtorch has
    /// threads (in order on the calling thread where it has one or n fits one block). A block's work may not depend on
    /// another's, so the split never changes a result.
    let forBlocks (n: int) (block: int) (body: int -> int -> unit) =
        let workers = max 1 (torch.get_num_threads ())
        if workers = 1 || n <= block then (if n > 0 then body 0 n)
        else
            let blocks = (n + block - 1) / block
            let options = Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = workers)
            Threading.Tasks.Parallel.For(0, blocks, options, fun b ->
                let first = b * block
                body first (min block (n - first))) |> ignore

    /// Runs body over rows [0, rows) in blocks, on as many workers as libtorch has threads; each row's result depends
    /// on that row alone, so the split does not change it.
    let private forRows (rows: int) (body: int -> unit) =
        forBlocks rows 64 (fun first count -> for r in first .. first + count - 1 do body r)

    /// The decoder's hidden layer and half of x . logits for the importance-weighted evaluation: for latent points
    /// z [R; J], the layer's weight transposed wT [J; H] and bias [H] (all float32), writes h = tanh(z W^T + bias) [R; H]
    /// and dots[r] = h_r . y_(r mod M) for y [M; H], rows ordered as samples x datapoints ([K; M; J] flattened). The
    /// layer is computed here, a row at a time, rather than by a multiply that writes and rereads a [R; H] tensor:
    /// with J = 20 its arithmetic is small beside that traffic.
    let tanhLayerDots (z: Tensor) (wT: Tensor) (bias: Tensor) (y: Tensor) (h: Tensor) (dots: Tensor) =
        let rows, j, cols, m = int z.shape.[0], int z.shape.[1], int wT.shape.[1], int y.shape.[0]
        if m < 1 || rows % m <> 0 then invalidArg "y" (sprintf "y has %d rows; expected a divisor of z's %d rows" m rows)
        requireSize "wT" j cols wT
        requireSize "bias" 1 cols bias
        requireSize "y" m cols y
        requireSize "h" rows cols h
        requireSize "dots" rows 1 dots
        let zp, wp, bp = NativePtr.toNativeInt (f32 "z" z), NativePtr.toNativeInt (f32 "wT" wT), NativePtr.toNativeInt (f32 "bias" bias)
        let yp, hp, dp = NativePtr.toNativeInt (f32 "y" y), NativePtr.toNativeInt (f32 "h" h), NativePtr.toNativeInt (f32 "dots" dots)
        forRows rows (fun r ->
            let zr = NativePtr.add (NativePtr.ofNativeInt<float32> zp) (r * j)
            let w, b = NativePtr.ofNativeInt<float32> wp, NativePtr.ofNativeInt<float32> bp
            let hr = NativePtr.add (NativePtr.ofNativeInt<float32> hp) (r * cols)
            let yr = NativePtr.add (NativePtr.ofNativeInt<float32> yp) ((r % m) * cols)
            let mutable c = 0
            let mutable s = 0.0f
            if vectors then
                let mutable acc = Vector512<float32>.Zero
                while c + Lanes <= cols do
                    let mutable a = Vector512.Load(NativePtr.add b c)
                    for k in 0 .. j - 1 do
                        a <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get zr k), Vector512.Load(NativePtr.add w (k * cols + c)), a)
                    let t = tanhV a
                    t.Store(NativePtr.add hr c)
                    acc <- Vector512.FusedMultiplyAdd(t, Vector512.Load(NativePtr.add yr c), acc)
                    c <- c + Lanes
                s <- Vector512.Sum acc
            while c < cols do
                let mutable a = NativePtr.get b c
                for k in 0 .. j - 1 do a <- MathF.FusedMultiplyAdd(NativePtr.get zr k, NativePtr.get w (k * cols + c), a)
                let t = MathF.Tanh a
                NativePtr.set hr c t
                s <- s + t * NativePtr.get yr c
                c <- c + 1
            NativePtr.set (NativePtr.ofNativeInt<float32> dp) r s)

    /// sums[r] = sum_d softplus(product[r, d] + bias[d]) for product [R; D] and bias [D] (float32). Each vector lane
    /// multiplies its factors 1 + e^-|l| (each in (1, 2]) and takes one logarithm per 120 of them, so there is one
    /// logarithm per lane and row at the paper's D; softplus l = max(l, 0) + log(1 + e^-|l|). Exact but for rounding:
    /// where e^-|l| < 2^-24 the factor rounds to 1, under 6e-8 nats per element.
    let softplusRowSums (product: Tensor) (bias: Tensor) (sums: Tensor) =
        let rows, cols = int product.shape.[0], int product.shape.[1]
        requireSize "bias" 1 cols bias
        requireSize "sums" rows 1 sums
        let pp, bp, sp = NativePtr.toNativeInt (f32 "product" product), NativePtr.toNativeInt (f32 "bias" bias), NativePtr.toNativeInt (f32 "sums" sums)
        forRows rows (fun r ->
            let row = NativePtr.ofNativeInt<float32> pp |> fun p -> NativePtr.add p (r * cols)
            let b = NativePtr.ofNativeInt<float32> bp
            let mutable j = 0
            let mutable s = 0.0f
            if vectors then
                let one = Vector512.Create 1.0f
                let mutable acc = Vector512<float32>.Zero
                let mutable factors = one
                let mutable count = 0
                while j + Lanes <= cols do
                    let l = Vector512.Load(NativePtr.add row j) + Vector512.Load(NativePtr.add b j)
                    acc <- acc + Vector512.Max(l, Vector512<float32>.Zero)
                    factors <- factors * (one + Vector512.Exp(-(Vector512.Abs l)))
                    count <- count + 1
                    if count = 120 then
                        acc <- acc + Vector512.Log factors
                        factors <- one
                        count <- 0
                    j <- j + Lanes
                s <- Vector512.Sum(acc + Vector512.Log factors)
            while j < cols do
                let l = NativePtr.get row j + NativePtr.get b j
                s <- s + (if l > 0.0f then l else 0.0f) + float32 (Math.Log(1.0 + Math.Exp(-(abs (float l)))))
                j <- j + 1
            NativePtr.set (NativePtr.ofNativeInt<float32> sp) r s)

namespace Vae.Core

open System
open TorchSharp

/// The importance-weighted bound (Burda et al. 2015), log (1/K) sum_k p(x, z_k) / q(z_k|x) with
/// z_k ~ q(z|x): the modern marginal-likelihood estimate (spec section 7), tighter than the ELBO.
[<RequireQualifiedAccess>]
module ImportanceWeighted =

    /// Per-datapoint scores [M] from K importance weights w_k = p(x, z_k) / q(z_k|x): the K-sample bound log mean w,
    /// its standard error by the delta method (the sample variance of w over K, divided by K and by (mean w)^2), the
    /// lower bound as the mean of log w (estimator A over the same draws) and its standard error. With K = 1 the
    /// standard errors are NaN.
    type Scores = { LogLikelihood: Tensor; StandardError: Tensor; Elbo: Tensor; ElboStandardError: Tensor }

    /// The chunks' log-sum-exps of log w [M] each, and with moments also of 2 log w and the sums of log w and (log w)^2.
    let private accumulate (logJoint: Tensor -> Tensor) (q: Distributions.DiagonalGaussian) (k: int) (chunk: int) (moments: bool) (g: torch.Generator) =
        if k < 1 then invalidArg (nameof k) (sprintf "K must be at least 1, got %d" k)
        if chunk < 1 then invalidArg (nameof chunk) (sprintf "the chunk size must be at least 1, got %d" chunk)
        [| for start in 0 .. chunk .. k - 1 do
               use _ = torch.NewDisposeScope()
               let size = min chunk (k - start)
               let eps = torch.randn([| int64 size; q.Mean.shape.[0]; q.Mean.shape.[1] |], dtype = q.Mean.dtype, generator = g)
               let z = Distributions.reparameterise q eps
               let logW = logJoint z - Distributions.gaussianLogDensityOfNoise q eps
               // The sums of log w and (log w)^2 in float64: their difference, the ELBO's variance, cancels to nothing in
               // float32 when log w is far from 0 and spreads little (ExtremeValueProperties).
               let parts =
                   if moments then
                       use wide = logW.to_type(torch.float64)
                       [| logW.logsumexp(0L); (Torch.timesNumber logW 2.0).logsumexp(0L); wide.sum(0L); (wide * wide).sum(0L) |]
                   else [| logW.logsumexp(0L) |]
               yield parts |> Array.map (fun t -> t.MoveToOuterDisposeScope()) |]

    /// The sum over chunks of part i (log-sum-exp for the log-sum-exps), disposing the parts.
    let private combine (parts: Tensor[][]) (i: int) (logSum: bool) =
        let stacked = torch.stack(parts |> Array.map (fun p -> p.[i]))
        let total = if logSum then stacked.logsumexp(0L) else stacked.sum(0L)
        stacked.Dispose()
        total

    /// The K-sample bound for any model: logJoint maps latent points z [K; M; J] to log p(x, z) [K; M] for the M
    /// datapoints, q is the proposal q(z|x) ([M; J] means and log-variances). Returns [M], without gradients, drawing
    /// at most chunk samples at a time (log-sum-exp over chunks, minus log K).
    let boundOf (logJoint: Tensor -> Tensor) (q: Distributions.DiagonalGaussian) (k: int) (chunk: int) (g: torch.Generator) : Tensor =
        use _ = torch.no_grad ()
        let parts = accumulate logJoint q k chunk false g
        let total = combine parts 0 true
        for p in parts do for t in p do t.Dispose()
        Torch.plusNumber total (-(Math.Log(float k)))

    /// Scores per datapoint from the same draws boundOf makes (its LogLikelihood equals boundOf's value bit for bit).
    let scoresOf (logJoint: Tensor -> Tensor) (q: Distributions.DiagonalGaussian) (k: int) (chunk: int) (g: torch.Generator) : Scores =
        use _ = torch.no_grad ()
        let parts = accumulate logJoint q k chunk true g
        let lse, lse2, sum, sumSquares = combine parts 0 true, combine parts 1 true, combine parts 2 false, combine parts 3 false
        for p in parts do for t in p do t.Dispose()
        let logK = Math.Log(float k)
        let bound = Torch.plusNumber lse (-logK)
        // Var(w) / (mean w)^2 = (mean w^2 / (mean w)^2 - 1) K / (K - 1), with mean w^2 / (mean w)^2 = exp(lse2 + log K - 2 lse).
        // Numbers through Torch's helpers, which keep their Scalars alive (see Torch.one).
        let ratio = (Torch.plusNumber lse2 logK - Torch.timesNumber lse 2.0).exp()
        let relativeVariance = Torch.timesNumber ((Torch.plusNumber ratio -1.0).clamp_min(Torch.constant 0.0)) (float k / float (k - 1))
        let elbo = Torch.overNumber sum (float k)
        let elboVariance = (Torch.overNumber (sumSquares - Torch.timesNumber (elbo * elbo) (float k)) (float (k - 1))).clamp_min(Torch.constant 0.0)
        { LogLikelihood = bound; StandardError = (Torch.overNumber relativeVariance (float k)).sqrt()
          Elbo = elbo.to_type(lse.dtype); ElboStandardError = (Torch.overNumber elboVariance (float k)).sqrt().to_type(lse.dtype) }

    /// log p(x, z) for evaluation, as a function of z for the datapoints x [M; D], with fewer passes over the [K; M; D]
    /// logits of a Bernoulli decoder: sum_d x_d l_d = h . (W^T x) + b . x is a product over the H hidden units per
    /// sample, W^T x computed once for every z. In float32 on the CPU (z [..; M; J]), one tanh layer: the hidden layer and that product
    /// are one pass (Kernels.tanhLayerDots), and so is the softplus sum over the output multiply (Kernels.softplusRowSums,
    /// within 6e-8 nats per pixel). Otherwise softplus is libtorch's one kernel (above 20 it returns l itself, off by at
    /// most 2e-9 nats per pixel). Other decoders: VaeModel.logJoint.
    let logJointForEvaluation (m: VaeModel) (x: Tensor) : Tensor -> Tensor =
        match m.Decoder with
        | BernoulliDecoder p when x.dtype = torch.float32 && x.device_type = DeviceType.CPU && p.Deeper.IsEmpty ->
            // Computed once for all of x's chunks of samples.
            let hidden, latent = p.Hidden.Weight.shape.[0], p.Hidden.Weight.shape.[1]
            let wT, bias = p.Hidden.Weight.t().contiguous(), p.Hidden.Bias.contiguous()
            let xW, xB = x.mm(p.Logits.Weight).contiguous(), x.mv(p.Logits.Bias)
            let outputBias = p.Logits.Bias.contiguous()
            fun z ->
                if z.dim() < 2L || z.shape.[z.shape.Length - 2] <> x.shape.[0] then
                    invalidArg "z" (sprintf "latent points of shape %A do not match %d datapoints" z.shape x.shape.[0])
                let leading = z.shape.[.. z.shape.Length - 2]
                let rows = z.reshape(-1L, latent).contiguous()
                let h, dots = torch.empty([| rows.shape.[0]; hidden |], dtype = z.dtype), torch.empty([| rows.shape.[0] |], dtype = z.dtype)
                Kernels.tanhLayerDots rows wT bias xW h dots
                let softplusSums = torch.empty([| rows.shape.[0] |], dtype = z.dtype)
                Kernels.softplusRowSums (h.mm(p.Logits.Weight.t())) outputBias softplusSums
                (dots - softplusSums).view(leading).add(xB, Torch.one).add(Distributions.standardNormalLogDensity z, Torch.one)
        | BernoulliDecoder p ->
            fun z ->
                let h = BernoulliMlp.hidden p z
                let logits = Linear.apply p.Logits h
                let xDotLogits = (h * x.mm(p.Logits.Weight)).sum(-1L).add(x.mv(p.Logits.Bias), Torch.one)
                (xDotLogits - torch.nn.functional.softplus(logits).sum(-1L)).add(Distributions.standardNormalLogDensity z, Torch.one)
        | _ -> VaeModel.logJoint m x

    /// log p(x, z) of a Bernoulli-decoder VAE with the decoder's output multiply in bfloat16 (opt-in mixed precision
    /// for evaluation): h and W5 rounded to bfloat16, the product widened and the bias added in the model's dtype. Both
    /// terms of log p(x|z) come from the same rounded logits, so this is the exact Bernoulli log-probability under
    /// logits perturbed by the rounding; that multiply is nearly all of the evaluation's arithmetic. Other decoders:
    /// ArgumentException.
    let logJointMixedPrecision (m: VaeModel) (x: Tensor) (z: Tensor) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p ->
            let h = BernoulliMlp.hidden p z
            let rows = h.reshape(-1L, h.shape.[h.shape.Length - 1])
            let product = torch.mm(rows.to_type(torch.bfloat16), p.Logits.Weight.to_type(torch.bfloat16).t())
            let shape = Array.append h.shape.[.. h.shape.Length - 2] [| p.Logits.Weight.shape.[0] |]
            let logits = torch.add(product, p.Logits.Bias).view(shape)
            let negLogLikelihood = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction = torch.nn.Reduction.None)
            Distributions.standardNormalLogDensity z - negLogLikelihood.sum(-1L)
        | _ -> invalidArg "m" (sprintf "mixed-precision evaluation needs a Bernoulli decoder; this model's decoder is %A" m.Config.Likelihood)

    /// The K-sample bound per datapoint of a VAE on x [M; D] with its encoder as the proposal ([M], no gradient).
    let bound (m: VaeModel) (x: Tensor) (k: int) (chunk: int) (g: torch.Generator) : Tensor =
        boundOf (logJointForEvaluation m x) (VaeModel.encode m x) k chunk g

    /// scoresOf for a VAE on x [M; D] with its encoder as the proposal (the draws of bound).
    let scores (m: VaeModel) (x: Tensor) (k: int) (chunk: int) (g: torch.Generator) : Scores =
        scoresOf (logJointForEvaluation m x) (VaeModel.encode m x) k chunk g

    /// bound with the decoder's output multiply in bfloat16 (logJointMixedPrecision; Bernoulli decoders).
    let boundMixedPrecision (m: VaeModel) (x: Tensor) (k: int) (chunk: int) (g: torch.Generator) : Tensor =
        boundOf (logJointMixedPrecision m x) (VaeModel.encode m x) k chunk g

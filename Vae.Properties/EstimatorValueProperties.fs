/// The estimators' values against an independent float64 reference: the networks of Appendix C and the estimators of
/// eq. 6, eq. 7 and Burda et al. written over plain arrays, not through the library's tensor code.
module Vae.Properties.EstimatorValueProperties

open System
open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// Plain float64 arrays of a model's parameters and the Appendix C networks over them.
module private Reference =
    let log2Pi = Math.Log(2.0 * Math.PI)

    /// A tensor's values as a matrix [rows][columns] (a vector is one row).
    let matrix (t: Tensor) : float[][] =
        let v = t.detach().to_type(torch.float64).contiguous().data<double>().ToArray()
        let columns = if t.dim() = 2L then int t.shape.[1] else v.Length
        Array.chunkBySize (max 1 columns) v

    let vector (t: Tensor) = (matrix t).[0]

    /// W x + b for W [out][in].
    let affine (w: float[][]) (b: float[]) (x: float[]) = Array.init w.Length (fun i -> b.[i] + Array.fold2 (fun s wi xi -> s + wi * xi) 0.0 w.[i] x)

    let layer (l: Linear) (x: float[]) = affine (matrix l.Weight) (vector l.Bias) x

    /// An MLP's tanh layers: the first, then each deeper one.
    let tanhLayers (first: Linear) (deeper: Linear list) (x: float[]) =
        deeper |> List.fold (fun h l -> layer l h |> Array.map Math.Tanh) (layer first x |> Array.map Math.Tanh)

    let softplus (l: float) = Math.Max(l, 0.0) + Math.Log(1.0 + Math.Exp(-Math.Abs l))
    let sigmoid (l: float) = 1.0 / (1.0 + Math.Exp(-l))

    /// log N(x; mean, diag exp(logVar)).
    let gaussian (mean: float[]) (logVar: float[]) (x: float[]) =
        Array.init x.Length (fun d -> -0.5 * (log2Pi + logVar.[d] + (x.[d] - mean.[d]) ** 2.0 / Math.Exp logVar.[d])) |> Array.sum

    /// q(z|x)'s mean and log-variance (C.2).
    let encode (m: VaeModel) (x: float[]) =
        let h = tanhLayers m.Encoder.Hidden m.Encoder.Deeper x
        layer m.Encoder.Mean h, layer m.Encoder.LogVar h

    /// log p(x|z) (C.1, C.2, or the linear-Gaussian decoder).
    let logLikelihood (m: VaeModel) (z: float[]) (x: float[]) =
        match m.Decoder with
        | BernoulliDecoder p ->
            let l = layer p.Logits (tanhLayers p.Hidden p.Deeper z)
            Array.fold2 (fun s xd ld -> s + xd * ld - softplus ld) 0.0 x l
        | GaussianDecoder p ->
            let h = tanhLayers p.Hidden p.Deeper z
            let mean = layer p.Mean h
            let mean = if m.Config.Likelihood = GaussianSigmoidMean then Array.map sigmoid mean else mean
            gaussian mean (layer p.LogVar h) x
        | LinearGaussianDecoder p -> gaussian (layer p.Mean z) (vector p.LogVar) x

    /// Estimator A (eq. 6) and B (eq. 7) for one datapoint and its L noise vectors, and the log-weights
    /// log p(x, z_l) - log q(z_l|x) of the importance-weighted bound.
    let estimates (m: VaeModel) (x: float[]) (eps: float[][]) =
        let mu, logVar = encode m x
        let zs = eps |> Array.map (fun e -> Array.init mu.Length (fun j -> mu.[j] + Math.Exp(0.5 * logVar.[j]) * e.[j]))
        let zero = Array.zeroCreate mu.Length
        let logW = zs |> Array.map (fun z -> logLikelihood m z x + gaussian zero zero z - gaussian mu logVar z)
        let kl = Array.init mu.Length (fun j -> -0.5 * (1.0 + logVar.[j] - mu.[j] ** 2.0 - Math.Exp logVar.[j])) |> Array.sum
        let a = Array.average logW
        let b = -kl + (zs |> Array.averageBy (fun z -> logLikelihood m z x))
        a, b, logW

let private decoders = [ Bernoulli; Gaussian; GaussianSigmoidMean; LinearGaussian ]

/// A model whose MLPs have one tanh layer (the paper's) or, for odd seeds, two (Burda et al.'s).
let private modelOf likelihood seed d h j =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = likelihood; DType = f64; InitStd = 0.6; HiddenLayers = 1 + abs seed % 2 } (Torch.generator (int64 seed))

/// Rows of a [M; D] tensor, and the noise [L; M; J] of datapoint i as L vectors.
let private rows (x: Tensor) = Reference.matrix x
let private noiseOf (eps: Tensor) (i: int) = Array.init (int eps.shape.[0]) (fun l -> Reference.vector (eps.[int64 l, int64 i]))

[<Tests>]
let tests =
    testList "estimator values" [
        for likelihood in decoders do
            testPropertyWithConfig (config 20) (sprintf "estimators A and B on fixed noise equal the float64 reference to 1e-12 (%A decoder)" likelihood) <| fun (seed: int) (dn: FsCheck.PositiveInt) (ln: FsCheck.PositiveInt) ->
                use _ = torch.NewDisposeScope()
                let d, l = size dn 1 9, size ln 1 3
                let m = modelOf likelihood seed d 5 2
                let g = Torch.generator (int64 seed + 1L)
                let x = torch.rand([| 4L; int64 d |], dtype = f64, generator = g)
                let eps = torch.randn([| int64 l; 4L; 2L |], dtype = f64, generator = g)
                let a, b = Reference.vector (ElboEstimator.A m x eps), Reference.vector (ElboEstimator.B m x eps)
                let agree (u: float) (v: float) = abs (u - v) <= 1e-12 * max 1.0 (abs v)
                rows x |> Array.mapi (fun i xi ->
                    let ra, rb, _ = Reference.estimates m xi (noiseOf eps i)
                    agree a.[i] ra && agree b.[i] rb) |> Array.forall id

        testPropertyWithConfig (config 20) "the latent activity is the variance over datapoints of the reference encoder's means; a dead unit's is 0" <| fun (seed: int) (nn: FsCheck.PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let n = size nn 2 40
            let m = modelOf Bernoulli seed 6 5 3
            // Unit 0 dead: its mean's weights and bias at zero, as training leaves an unused unit.
            Torch.noGrad (fun () -> m.Encoder.Mean.Weight.[0L].zero_() |> ignore; m.Encoder.Mean.Bias.[0L].zero_() |> ignore)
            let x = torch.rand([| int64 n; 6L |], dtype = f64, generator = Torch.generator (int64 seed + 4L))
            // Batches of 7: the batching does not show in the result.
            let activity = Reference.vector (Evaluation.latentActivity m x 7)
            let means = rows x |> Array.map (fun xi -> fst (Reference.encode m xi))
            let expected = Array.init 3 (fun u ->
                let column = means |> Array.map (fun mu -> mu.[u])
                let average = Array.average column
                column |> Array.averageBy (fun v -> (v - average) ** 2.0))
            activity.[0] = 0.0
            && Array.forall2 (fun (a: float) (e: float) -> abs (a - e) <= 1e-12 * max 1e-3 (abs e)) activity expected

        testPropertyWithConfig (config 20) "estimator A with L = 1 equals the importance-weighted bound with K = 1 on the same noise" <| fun (seed: int) (decoder: int) ->
            use _ = torch.NewDisposeScope()
            let likelihood = decoders.[abs decoder % decoders.Length]
            let m = modelOf likelihood seed 6 5 3
            let x = torch.rand([| 5L; 6L |], dtype = f64, generator = Torch.generator (int64 seed + 2L))
            // boundOf's first (only) chunk draws [1; M; J] from its generator: the same draws as eps.
            let eps = torch.randn([| 1L; 5L; 3L |], dtype = f64, generator = Torch.generator (int64 seed + 3L))
            let iwae = ImportanceWeighted.bound m x 1 1 (Torch.generator (int64 seed + 3L))
            let a = ElboEstimator.A m x eps
            ((iwae - a).abs().max().item<double> ()) <= 1e-12 * max 1.0 (a.abs().max().item<double> ())

        testCase "the importance-weighted bound equals the float64 reference's log-mean-exp of the same weights" <| fun () ->
            use _ = torch.NewDisposeScope()
            for likelihood in decoders do
                let m = modelOf likelihood 4 6 5 2
                let x = torch.rand([| 3L; 6L |], dtype = f64, generator = Torch.generator 5L)
                let k, chunk = 37, 5 // a last chunk of 2: the chunks do not divide K
                let g = Torch.generator 6L
                let iwae = Reference.vector (ImportanceWeighted.bound m x k chunk g)
                // The same draws, chunk by chunk, gathered as [K; M; J].
                let g' = Torch.generator 6L
                let eps = torch.cat([| for start in 0 .. chunk .. k - 1 -> torch.randn([| int64 (min chunk (k - start)); 3L; 2L |], dtype = f64, generator = g') |], 0L)
                rows x |> Array.iteri (fun i xi ->
                    let _, _, logW = Reference.estimates m xi (noiseOf eps i)
                    let top = Array.max logW
                    let expected = top + Math.Log(logW |> Array.sumBy (fun w -> Math.Exp(w - top))) - Math.Log(float k)
                    Expect.floatClose { absolute = 1e-12; relative = 1e-12 } iwae.[i] expected (sprintf "%A decoder, datapoint %d" likelihood i))

        testCase "on a linear-Gaussian model the importance-weighted bound lies below the exact log p(x) and reaches it at K = 5000" <| fun () ->
            use _ = torch.NewDisposeScope()
            // Factor analysis: log p(x) = log N(x; b, W W^T + diag s^2) in closed form. The encoder is a random MLP, so
            // q(z|x) is a poor proposal: the bound is far below at K = 1 and closes the gap as K grows.
            let m = VaeModel.create { InputDim = 4; HiddenUnits = 6; LatentDim = 1; Likelihood = LinearGaussian; DType = f64; InitStd = 0.7; HiddenLayers = 1 } (Torch.generator 11L)
            let x = torch.randn([| 20L; 4L |], dtype = f64, generator = Torch.generator 12L)
            let exact = (VaeModel.exactLogLikelihood m x).mean().item<double> ()
            let g = Torch.generator 13L
            for k, chunk in [ 1, 1; 10, 3; 5000, 333 ] do
                // 40 repeats: the mean and its standard error over them.
                let draws = [| for _ in 1 .. 40 -> (ImportanceWeighted.bound m x k chunk g).mean().item<double> () |]
                let mean = Array.average draws
                let spread = draws |> Array.sumBy (fun v -> (v - mean) ** 2.0)
                let se = sqrt (spread / float (draws.Length - 1) / float draws.Length)
                Expect.isLessThan mean (exact + 5.0 * se + 1e-9) (sprintf "K = %d: %.4f against the exact %.4f (SE %.4f)" k mean exact se)
                if k = 5000 then Expect.isLessThan (abs (mean - exact)) 0.05 (sprintf "K = 5000: %.4f against the exact %.4f" mean exact)
    ]

/// Mathematical properties of the distributions, estimators and optimiser, checked in float64.
module Vae.Properties.EstimatorProperties

open System
open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private item (t: Tensor) = t.item<double> ()

/// A small model of the given likelihood in float64 (parameters spread wider than the paper's 0.01
/// initialisation so that every term of the gradient matters).
let private smallModel (likelihood: Likelihood) (seed: int) (d: int) (h: int) (j: int) =
    let g = Torch.generator (int64 seed)
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = likelihood; DType = f64; InitStd = 0.5; HiddenLayers = 1 } g

/// Whether every parameter's autograd gradient of estimator kind on (x, eps) equals central finite differences.
let private gradientsMatchFiniteDifferences (kind: EstimatorKind) (m: VaeModel) (x: Tensor) (eps: Tensor) =
    let f () = (ElboEstimator.ofKind kind m x eps).sum()
    let ps = VaeModel.tensors m
    let _, grads = Torch.valueAndGrad f ps
    Array.zip ps grads |> Array.forall (fun (p, g) ->
        let fd = Torch.finiteDifferences (fun () -> item (f ())) p 1e-6
        let ad = g.contiguous().data<double>().ToArray()
        Array.forall2 (fun (a: double) (b: double) -> abs (a - b) <= 1e-6 * (1.0 + abs a)) ad fd)

let private data (likelihood: Likelihood) (seed: int) (m: int) (d: int) =
    let g = Torch.generator (int64 seed + 1000L)
    let x = torch.rand([| int64 m; int64 d |], dtype = f64, generator = g)
    if likelihood = Bernoulli then torch.bernoulli(x, generator = g) else x

let private gaussianOf (seed: int) (j: int) : Distributions.DiagonalGaussian =
    let g = Torch.generator (int64 seed)
    { Mean = torch.randn([| int64 j |], dtype = f64, generator = g)
      LogVar = torch.randn([| int64 j |], dtype = f64, generator = g) * 0.8 }

[<Tests>]
let tests =
    testList "estimators" [
        testPropertyWithConfig (config 20) "analytic KL equals a Monte Carlo KL within 5 standard errors" <| fun (seed: int) (j: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let q = gaussianOf seed (size j 1 6)
            let eps = torch.randn([| 200_000L; q.Mean.shape.[0] |], dtype = f64, generator = Torch.generator (int64 seed + 7L))
            let z = Distributions.reparameterise q eps
            let terms = Distributions.gaussianLogDensity q z - Distributions.standardNormalLogDensity z
            let mc, se = item (terms.mean()), item (terms.std()) / sqrt 200_000.0
            let analytic = item (Distributions.klToStandardNormal q)
            abs (analytic - mc) < 5.0 * se + 1e-9

        testPropertyWithConfig (config 50) "KL is non-negative, and zero exactly when q is the prior" <| fun (seed: int) (j: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let q = gaussianOf seed (size j 1 20)
            let prior : Distributions.DiagonalGaussian = { Mean = torch.zeros_like(q.Mean); LogVar = torch.zeros_like(q.LogVar) }
            item (Distributions.klToStandardNormal q) > 0.0 && item (Distributions.klToStandardNormal prior) = 0.0

        testPropertyWithConfig (config 20) "reparameterised samples have the requested mean and variance" <| fun (seed: int) (j: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let q = gaussianOf seed (size j 1 4)
            let n = 100_000
            let z = Distributions.reparameterise q (torch.randn([| int64 n; q.Mean.shape.[0] |], dtype = f64, generator = Torch.generator (int64 seed + 3L)))
            let var = q.LogVar.exp()
            let meanOk = ((z.mean([| 0L |]) - q.Mean).abs() - (var / float n).sqrt() * 5.0).max() |> item < 0.0
            // The sample variance's standard error is about var * sqrt(2 / n).
            let varOk = ((z.var(0L) - var).abs() - var * sqrt (2.0 / float n) * 5.0).max() |> item < 0.0
            meanOk && varOk

        for likelihood in [ Bernoulli; GaussianSigmoidMean; Gaussian; LinearGaussian ] do
            for kind in [ A; B ] do
                testPropertyWithConfig (config 3) (sprintf "estimator %A gradients equal central finite differences (%A decoder, float64)" kind likelihood) <| fun (seed: int) ->
                    use _ = torch.NewDisposeScope()
                    let m = smallModel likelihood seed 5 4 2 |> VaeModel.requireGrad true
                    let x = data likelihood seed 3 5
                    let eps = torch.randn([| 2L; 3L; 2L |], dtype = f64, generator = Torch.generator (int64 seed + 5L))
                    gradientsMatchFiniteDifferences kind m x eps

            testPropertyWithConfig (config 3) (sprintf "estimator B gradients equal central finite differences with two or three tanh layers (%A decoder, float64)" likelihood) <| fun (seed: int) ->
                use _ = torch.NewDisposeScope()
                let c = { InputDim = 5; HiddenUnits = 4; LatentDim = 2; Likelihood = likelihood; DType = f64; InitStd = 0.5; HiddenLayers = 2 + abs seed % 2 }
                let m = VaeModel.create c (Torch.generator (int64 seed)) |> VaeModel.requireGrad true
                let x = data likelihood seed 3 5
                let eps = torch.randn([| 1L; 3L; 2L |], dtype = f64, generator = Torch.generator (int64 seed + 5L))
                gradientsMatchFiniteDifferences B m x eps

        testPropertyWithConfig (config 5) "estimators A and B agree in expectation" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let m = smallModel Bernoulli seed 8 6 3
            let x = data Bernoulli seed 4 8
            use _ = torch.no_grad ()
            // ElboEstimator's own A and B on the same noise, for 5000 copies of the minibatch (L = 1, 20,000 rows): the
            // paired difference A - B = log p(z) - log q(z|x) + KL has mean zero; it must vanish within 5 standard errors.
            let copies = x.repeat(5000L, 1L)
            let eps = torch.randn([| 1L; 20_000L; 3L |], dtype = f64, generator = Torch.generator (int64 seed + 9L))
            let diff = ElboEstimator.A m copies eps - ElboEstimator.B m copies eps
            abs (item (diff.mean())) < 5.0 * item (diff.std()) / sqrt 20_000.0

        testPropertyWithConfig (config 3) "estimator B's gradient has lower variance than A's (measured)" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let m = smallModel Bernoulli seed 8 6 3 |> VaeModel.requireGrad true
            let x = data Bernoulli seed 4 8
            let ps = VaeModel.encoderParameters m |> List.map (fun p -> p.Tensor) |> List.toArray
            let gradVariance kind =
                let g = Torch.generator (int64 seed + 11L)
                let draws =
                    [| for _ in 1 .. 400 ->
                         let eps = torch.randn([| 1L; 4L; 3L |], dtype = f64, generator = g)
                         let _, gs = Torch.valueAndGrad (fun () -> (ElboEstimator.ofKind kind m x eps).sum()) ps
                         torch.cat(gs |> Array.map (fun t -> t.flatten()), 0L) |]
                item (torch.stack(draws).var(0L).sum())
            gradVariance B < gradVariance A

        testPropertyWithConfig (config 5) "the importance-weighted bound is above the ELBO and grows with K" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let m = smallModel Bernoulli seed 8 6 2
            let x = data Bernoulli seed 3 8
            let g = Torch.generator (int64 seed + 13L)
            // Expectations over 200 repeats; the standard error is far below the gaps at these K.
            let mean k = [| for _ in 1 .. 200 -> item ((ImportanceWeighted.bound m x k 64 g).mean()) |] |> Array.average
            let elbo = Evaluation.bound A m (x.repeat(2000L, 1L)) 1000 g
            let k1, k10, k100 = mean 1, mean 10, mean 100
            abs (k1 - elbo) < 0.05 * (1.0 + abs elbo) && k10 > k1 && k100 > k10

        testPropertyWithConfig (config 30) "the evaluation's log p(x, z) equals the exact one within 2e-9 nats per pixel, large logits included" <| fun (seed: int) (spread: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            // Initial spreads up to 5 make logits of several hundred, past libtorch's softplus threshold of 20.
            let g = Torch.generator (int64 seed)
            let std = 0.1 + float (spread.Get % 50) / 10.0
            let m = VaeModel.create { InputDim = 12; HiddenUnits = 7; LatentDim = 3; Likelihood = Bernoulli; DType = f64; InitStd = std; HiddenLayers = 1 } g
            let x = torch.bernoulli(torch.rand([| 4L; 12L |], dtype = f64, generator = g), generator = g)
            let z = torch.randn([| 5L; 4L; 3L |], dtype = f64, generator = g) * 3.0
            let exact = VaeModel.logJoint m x z
            let fast = ImportanceWeighted.logJointForEvaluation m x z
            item ((exact - fast).abs().max()) <= 12.0 * 2.1e-9 + 1e-9 * item (exact.abs().max())

        testPropertyWithConfig (config 30) "the float32 evaluation's log p(x, z) (one-pass kernels) equals the exact one in float64 to float32 rounding" <| fun (seed: int) (spread: PositiveInt) (dn: PositiveInt) (grey: bool) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let std = 0.1 + float (spread.Get % 30) / 10.0
            let d = size dn 1 80
            let config = { InputDim = d; HiddenUnits = 37; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = std; HiddenLayers = 1 }
            let m = VaeModel.create config g
            let m64 = VaeModel.create { config with DType = f64 } g
            Array.iter2 (fun (t64: Tensor) (t: Tensor) -> t64.copy_(t) |> ignore) (VaeModel.tensors m64) (VaeModel.tensors m)
            let x = torch.rand([| 4L; int64 d |], generator = g)
            let x = if grey then x else torch.bernoulli(x, generator = g)
            let z = torch.randn([| 30L; 4L; 3L |], generator = g) * 2.0
            let fast = ImportanceWeighted.logJointForEvaluation m x z
            let exact = VaeModel.logJoint m64 (x.to_type(f64)) (z.to_type(f64))
            // Float32 rounding of terms of size sum_d |x_d l_d| + softplus(l_d), and under 6e-8 nats per pixel from 1 + e^-|l|.
            let p = match m64.Decoder with BernoulliDecoder p -> p | _ -> failwith "Bernoulli"
            let logits = Linear.apply p.Logits ((Linear.apply p.Hidden (z.to_type(f64))).tanh())
            let scale = ((x.to_type(f64) * logits).abs() + torch.nn.functional.softplus(logits)).sum(-1L)
            ((fast.to_type(f64) - exact).abs() - scale * 2e-6 - float d * 1e-7).max().item<double> () <= 1e-5

        testPropertyWithConfig (config 30) "the mixed-precision log p(x, z) is within the bfloat16 rounding bound of the exact one" <| fun (seed: int) (spread: PositiveInt) (grey: bool) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let std = 0.1 + float (spread.Get % 20) / 10.0
            let m = VaeModel.create { InputDim = 40; HiddenUnits = 16; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = std; HiddenLayers = 1 } g
            let x = torch.rand([| 4L; 40L |], generator = g)
            let x = if grey then x else torch.bernoulli(x, generator = g)
            let z = torch.randn([| 5L; 4L; 3L |], generator = g) * 2.0
            let exact = VaeModel.logJoint m x z
            let mixed = ImportanceWeighted.logJointMixedPrecision m x z
            // Rounding h and W5 to bfloat16 (8 significant bits) moves logit d by at most about 2^-8 sum_k |h_k W5_dk|, and
            // log p(x|z) by at most |x_d - sigmoid(l_d)| <= 1 times that; allow twice the bound.
            let p = match m.Decoder with BernoulliDecoder p -> p | _ -> failwith "Bernoulli"
            let h = (Linear.apply p.Hidden z).tanh()
            let bound = h.abs().matmul(p.Logits.Weight.abs().t()).sum(-1L) * (2.0 / 256.0)
            ((exact - mixed).abs() - bound).max().item<float32> () <= 1e-4f

        testCase "mixed-precision evaluation names the decoder it lacks" <| fun () ->
            let m = smallModel Gaussian 1 8 6 2
            let e = Expect.throwsC (fun () -> Evaluation.importanceWeightedIn true m (data Gaussian 1 3 8) 10 10 (Torch.generator 1L) |> ignore) id
            Expect.stringContains e.Message "Gaussian" "the decoder is named"

        testPropertyWithConfig (config 100) "Bernoulli log-probability matches the direct formula, logits up to ±1000" <| fun (NormalFloat l) (x: bool) (grey: NormalFloat) ->
            let l = (l % 1000.0)
            let target = if x then 1.0 else abs grey.Get % 1.0
            let direct =
                // log sigmoid(l) = -log(1 + e^-l), log(1 - sigmoid(l)) = -log(1 + e^l), written stably.
                let logSig v = if v >= 0.0 then -Math.Log(1.0 + Math.Exp(-v)) else v - Math.Log(1.0 + Math.Exp v)
                target * logSig l + (1.0 - target) * logSig (-l)
            let ours = Distributions.bernoulliLogProbability (torch.tensor([| l |], dtype = f64)) (torch.tensor([| target |], dtype = f64)) |> item
            Double.IsFinite ours && abs (ours - direct) <= 1e-9 * (1.0 + abs direct)

        testPropertyWithConfig (config 100) "Gaussian log-density matches the direct formula" <| fun (NormalFloat mu) (NormalFloat lv) (NormalFloat x) ->
            let mu, lv, x = mu % 100.0, lv % 20.0, x % 100.0
            let direct = -0.5 * (Math.Log(2.0 * Math.PI) + lv + (x - mu) ** 2.0 / Math.Exp lv)
            let q : Distributions.DiagonalGaussian = { Mean = torch.tensor([| mu |], dtype = f64); LogVar = torch.tensor([| lv |], dtype = f64) }
            let ours = Distributions.gaussianLogDensity q (torch.tensor([| x |], dtype = f64)) |> item
            abs (ours - direct) <= 1e-9 * (1.0 + abs direct)

        testCase "Adagrad matches a hand computation over warm-up and updates" <| fun () ->
            let p = torch.tensor([| 1.0; -2.0 |], dtype = f64)
            let c = { StepSize = 0.1; WarmUp = 1; Regulariser = 1e-8 }
            let grads = [| [| 0.5; 1.0 |]; [| -1.0; 2.0 |]; [| 2.0; -1.0 |] |]
            let mutable s = Adagrad.init [| p |]
            for g in grads do s <- Adagrad.ascend c s [| p |] [| torch.tensor(g, dtype = f64) |]
            // Steps 0 and 1 only accumulate (0-based step > WarmUp updates); step 2 updates with G = sum of squares.
            let g0 = 0.25 + 1.0 + 4.0
            let g1 = 1.0 + 4.0 + 1.0
            let expected = [| 1.0 + 0.1 * 2.0 / sqrt (g0 + 1e-8); -2.0 + 0.1 * -1.0 / sqrt (g1 + 1e-8) |]
            let actual = p.data<double>().ToArray()
            Array.iter2 (fun (a: float) e -> Expect.floatClose Accuracy.veryHigh a e "parameters after three steps") actual expected
            Expect.equal s.Steps 3L "steps"

        testPropertyWithConfig (config 50) "the one-pass Adagrad update equals Adagrad.ascend to float32 rounding, warm-up included" <| fun (seed: int) (nn: PositiveInt) (warm: NonNegativeInt) ->
            use _ = torch.NewDisposeScope()
            // Sizes below and above the vector width, with and without a remainder.
            let n, warmUp = 1 + nn.Get % 300, warm.Get % 4
            let c = { StepSize = 0.02; WarmUp = warmUp; Regulariser = 1e-8 }
            let g = Torch.generator (int64 seed)
            let p0 = torch.randn([| int64 n |], generator = g)
            let pRef, pOne = p0.clone(), p0.clone()
            let mutable sRef, sOne = Adagrad.init [| pRef |], Adagrad.init [| pOne |]
            let mutable ok = true
            for step in 0 .. warmUp + 3 do
                let grad = torch.randn([| int64 n |], generator = g).mul_(Torch.scalar (10.0 ** float (step % 3 - 1)))
                sRef <- Adagrad.ascend c sRef [| pRef |] [| grad |]
                sOne <- Adagrad.ascendOnePass c sOne pOne grad
                let sums = (sRef.SumSquares.[0] - sOne.SumSquares.[0]).abs().max().item<float32> () <= 1e-6f * sRef.SumSquares.[0].abs().max().item<float32> ()
                let parameters = ((pRef - pOne).abs() - (pRef.abs() + 1.0f) * 1e-6f).max().item<float32> () <= 0.0f
                // Before the first update (0-based step WarmUp + 1) the parameters are untouched, bit for bit.
                let untouched = step > warmUp || (pOne - p0).abs().max().item<float32> () = 0.0f
                ok <- ok && sums && parameters && untouched && sOne.Steps = sRef.Steps
            ok

        testCase "the one-pass Adagrad update of a view writes the view's elements and no others" <| fun () ->
            let whole = torch.zeros([| 40L |])
            let view = whole.narrow(0L, 8L, 17L)
            let s = { SumSquares = [| torch.zeros([| 17L |]) |]; FirstMoments = [||]; Steps = 0L }
            Adagrad.ascendOnePass { StepSize = 0.1; WarmUp = -1; Regulariser = 1e-8 } s view (torch.ones([| 17L |])) |> ignore
            // One update with G = g^2 = 1 moves each element by 0.1 / sqrt(1 + 1e-8).
            let values = whole.data<float32>().ToArray()
            let expected = Array.init 40 (fun i -> if i >= 8 && i < 25 then float32 (0.1 / sqrt (1.0 + 1e-8)) else 0.0f)
            Expect.sequenceEqual values expected "elements 8-24 updated, the rest untouched"

        testCase "the one-pass Adagrad update refuses what it cannot address, naming the tensor" <| fun () ->
            let p = torch.zeros([| 4L |], dtype = f64)
            let s = { SumSquares = [| torch.zeros([| 4L |]) |]; FirstMoments = [||]; Steps = 0L }
            let e = Expect.throwsC (fun () -> Adagrad.ascendOnePass (Adagrad.paper 0.02) s p (torch.zeros([| 4L |])) |> ignore) id
            Expect.isTrue (e :? ArgumentException) "an ArgumentException"
            Expect.stringContains e.Message "parameters is Float64" "the tensor and its dtype are named"
    ]

/// The numbers at their extremes, in the dtype training uses (float32, and the bfloat16 multiplies of mixed precision):
/// log-variances of +-50 for each decoder (Frey Face's sigmoid-mean Gaussian among them), importance weights that are all zero (log w = -inf), log-weights far from zero whose spread is small, a kernel density estimate of
/// identical samples, and an HMC chain that never moves.
module Vae.Properties.ExtremeValueProperties

open System
open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private f32 = torch.float32

/// A model of each decoder in float64 and its float32 copy (the same parameters rounded), with every log-variance head
/// (the encoder's, and a Gaussian decoder's) at the constant logVar: weights 0, biases logVar.
let private pair likelihood (logVar: float) =
    let m = VaeModel.create { InputDim = 6; HiddenUnits = 5; LatentDim = 3; Likelihood = likelihood; DType = f64; InitStd = 0.6; HiddenLayers = 1 } (Torch.generator 3L)
    let pin (l: Linear) = Torch.noGrad (fun () -> l.Weight.zero_() |> ignore; l.Bias.fill_(Torch.constant logVar) |> ignore)
    pin m.Encoder.LogVar
    match m.Decoder with GaussianDecoder p -> pin p.LogVar | _ -> ()
    let single = VaeModel.ofVector { m.Config with DType = f32 } (m.ParameterVector.detach().to_type(f32))
    m, single

/// The value per datapoint and the gradient of its sum in every parameter, as float64 arrays.
let private valueAndGradient (estimator: VaeModel -> Tensor -> Tensor -> Tensor) (m: VaeModel) (x: Tensor) (eps: Tensor) =
    let m = VaeModel.requireGrad true m
    let value = estimator m x eps
    value.sum().backward()
    let read (t: Tensor) = t.detach().to_type(f64).contiguous().data<double>().ToArray()
    read value, VaeModel.tensors m |> Array.collect (fun t -> read t.grad)

[<Tests>]
let tests =
    testList "extreme values" [
        for likelihood in [ Bernoulli; Gaussian; GaussianSigmoidMean ] do
            for logVar in [ 50.0; -50.0 ] do
                for name, estimator in [ "A", ElboEstimator.A; "B", ElboEstimator.B; "IWAE", ElboEstimator.Iwae ] do
                    testCase (sprintf "estimator %s and its gradient at log-variances of %+g are finite in float32 and equal float64's (%A decoder)" name logVar likelihood) <| fun () ->
                        use _ = torch.NewDisposeScope()
                        let m64, m32 = pair likelihood logVar
                        let g = Torch.generator 4L
                        let x = torch.rand([| 4L; 6L |], dtype = f64, generator = g)
                        let eps = torch.randn([| 3L; 4L; 3L |], dtype = f64, generator = g)
                        let v64, g64 = valueAndGradient estimator m64 x eps
                        let v32, g32 = valueAndGradient estimator m32 (x.to_type(f32)) (eps.to_type(f32))
                        Expect.isTrue (Array.forall Double.IsFinite v32) (sprintf "values %A" v32)
                        Expect.isTrue (Array.forall Double.IsFinite g32) "every gradient entry finite"
                        Array.iteri2 (fun i (a: float) (b: float) ->
                            Expect.floatClose { absolute = 0.0; relative = 1e-5 } a b (sprintf "datapoint %d's value" i)) v32 v64
                        // Each entry against the largest of the gradient's: float32 rounds the largest terms at 1e-7.
                        let scale = g64 |> Array.map abs |> Array.max
                        Array.iteri2 (fun i (a: float) (b: float) ->
                            if abs (a - b) > 1e-4 * scale then failtestf "gradient entry %d: float32 %g, float64 %g (largest %g)" i a b scale) g32 g64

        for logVar in [ 50.0; -50.0 ] do
          testCase (sprintf "the hand-derived float32, one-pass and bfloat16 gradients at encoder log-variances of %+g are finite and equal float64 autograd's" logVar) <| fun () ->
            use _ = torch.NewDisposeScope()
            let m64, m32 = pair Bernoulli logVar
            let g = Torch.generator 5L
            let x = torch.rand([| 4L; 6L |], dtype = f64, generator = g)
            let eps = torch.randn([| 4L; 3L |], dtype = f64, generator = g)
            let paper = { LearnerConfig.paper 0.02 with BatchSize = 4 }
            let objective, perDatapoint = Aevb.objective paper 1000L (VaeModel.requireGrad true m64) x (eps.unsqueeze(0L))
            let expected = torch.autograd.grad([| objective |], VaeModel.tensors m64) |> Seq.toArray
            let meanBound = perDatapoint.mean().item<double> ()
            // bfloat16 keeps 8 bits of mantissa: its multiplies' rounding bounds its tolerance, as at ordinary values.
            for name, c, tolerance in [ "hand-derived", paper, 1e-4; "one-pass", { paper with Gradient = OnePass }, 1e-4; "bfloat16", { paper with MixedPrecision = true }, 0.02 ] do
                use w = HandDerivedSteps.workspace c m32.Config
                let bound = (HandDerivedSteps.gradient c 1000L w m32 (x.to_type(f32)) (eps.to_type(f32))).item<float32> () |> float
                let actual = VaeModel.tensors w.GradientModel
                Expect.isTrue (actual |> Array.forall (fun t -> t.isfinite().all().item<bool> ())) (sprintf "%s: every gradient entry finite" name)
                let worst =
                    Array.map2 (fun (a: Tensor) (b: Tensor) -> (a.to_type(f64) - b).norm().item<double> () / max 1e-12 (b.norm().item<double> ())) actual expected
                    |> Array.max
                Expect.isLessThan worst tolerance (sprintf "%s: the largest relative error of a parameter's gradient" name)
                Expect.isLessThan (abs (bound - meanBound)) (tolerance * abs meanBound) (sprintf "%s: the minibatch's mean bound (%g against %g)" name bound meanBound)

        testCase "importance weights all zero give a bound and scores of -inf, never NaN, and leave other datapoints' alone" <| fun () ->
            use _ = torch.NewDisposeScope()
            let q : Distributions.DiagonalGaussian = { Mean = torch.zeros([| 2L; 3L |], dtype = f32); LogVar = torch.zeros([| 2L; 3L |], dtype = f32) }
            // Datapoint 0 has log p(x, z) = -inf everywhere; datapoint 1 the standard normal's log density plus 1.
            let logJoint (z: Tensor) =
                let finite = Torch.plusNumber (Distributions.standardNormalLogDensity z) 1.0
                torch.stack([| Torch.filled [| finite.shape.[0] |] Double.NegativeInfinity f32; finite.select(-1L, 1L) |], -1L)
            for k, chunk in [ 1, 1; 50, 7 ] do
                let bound = ImportanceWeighted.boundOf logJoint q k chunk (Torch.generator 5L)
                let scores = ImportanceWeighted.scoresOf logJoint q k chunk (Torch.generator 5L)
                let at (t: Tensor) i = t.[int64 i].to_type(f64).item<double> ()
                for t, what in [ bound, "bound"; scores.LogLikelihood, "scores' log p(x)"; scores.Elbo, "scores' ELBO" ] do
                    Expect.equal (at t 0) Double.NegativeInfinity (sprintf "K = %d: %s of the datapoint with zero weights" k what)
                    // w = e exactly: every estimate of datapoint 1 is 1 (to float32's rounding of log densities).
                    Expect.floatClose { absolute = 1e-5; relative = 0.0 } (at t 1) 1.0 (sprintf "K = %d: %s of the other datapoint" k what)
                if k > 1 then
                    Expect.floatClose { absolute = 1e-4; relative = 0.0 } (at scores.StandardError 1) 0.0 "a constant weight's standard error is 0"
                    Expect.isFalse (Double.IsNaN (at scores.ElboStandardError 1)) "the other datapoint's ELBO standard error is a number"

        testCase "the standard errors of log-weights near -10^4 with a small spread are float32's to 5%, not lost to cancellation" <| fun () ->
            use _ = torch.NewDisposeScope()
            // With q = N(0, I) in one dimension and log p(x, z) = log q(z) - 10^4 + z / 2, log w = -10^4 + z / 2: the mean of
            // log w has standard error 0.5 / sqrt K; w is log-normal, Var(w) / (E w)^2 = e^0.25 - 1.
            let k = 4000
            let q : Distributions.DiagonalGaussian = { Mean = torch.zeros([| 3L; 1L |], dtype = f32); LogVar = torch.zeros([| 3L; 1L |], dtype = f32) }
            let logJoint (z: Tensor) = Torch.plusNumber (Distributions.standardNormalLogDensity z + Torch.timesNumber (z.select(-1L, 0L)) 0.5) -1e4
            let scores = ImportanceWeighted.scoresOf logJoint q k 1000 (Torch.generator 6L)
            let values (t: Tensor) = t.to_type(f64).contiguous().data<double>().ToArray()
            for se in values scores.ElboStandardError do
                Expect.floatClose { absolute = 0.0; relative = 0.05 } se (0.5 / sqrt (float k)) "the ELBO's standard error"
            for se in values scores.StandardError do
                Expect.floatClose { absolute = 0.0; relative = 0.1 } se (sqrt ((exp 0.25 - 1.0) / float k)) "log p(x)'s standard error"

        testCase "a kernel density estimate of identical samples is finite, highest at the samples" <| fun () ->
            use _ = torch.NewDisposeScope()
            for dtype in [ f32; f64 ] do
                let samples = Torch.filled [| 2L; 10L; 3L |] 0.7 dtype
                let h = Torch.filled [| 2L |] 0.5 dtype
                let away = Torch.filled [| 2L; 1L; 3L |] 0.7001 dtype
                let loo = MarginalLikelihood.kdeLogDensity samples h samples true
                let atAway = MarginalLikelihood.kdeLogDensity samples h away false
                Expect.isTrue (loo.isfinite().all().item<bool> ()) (sprintf "%A: leave-one-out densities finite" dtype)
                Expect.isTrue (atAway.isfinite().all().item<bool> ()) (sprintf "%A: the density beside the samples finite" dtype)
                Expect.isTrue (loo.min().item<double> () > atAway.max().item<double> ()) "highest at the samples"

        testCase "an HMC chain that never moves is reported as not mixed, not as an estimate" <| fun () ->
            use _ = torch.NewDisposeScope()
            // log p(x, z) is 0 at the chain's start and -inf elsewhere: every proposal is rejected, whatever its step size.
            let start = torch.tensor([| 0.3; -0.2 |], dtype = f64).view(1L, 2L)
            let logJoint (z: Tensor) =
                let wall = torch.where(z.eq(start).all(-1L), torch.zeros(z.shape.[0], dtype = f64), Torch.filled [| z.shape.[0] |] Double.NegativeInfinity f64)
                wall + Torch.timesNumber (z.sum(-1L)) 0.0 // a function of z, as HMC's gradient needs
            let c = { MarginalLikelihood.paper with BurnIn = 50; StartCandidates = 0 }
            let est, unmixed, last = MarginalLikelihood.estimateOnce c logJoint start (Torch.generator 7L)
            Expect.isTrue (last.eq(start).all().item<bool> ()) "the chain stayed at its start"
            Expect.isTrue (unmixed.all().item<bool> ()) (sprintf "a chain that never moved is not mixed (its estimate: %g)" (est.item<double> ()))
            // Records made before the check replay with it off: the stuck chain then passes both mixing checks.
            let _, before, _ = MarginalLikelihood.estimateOnce { c with RetryStuckChains = false } logJoint start (Torch.generator 7L)
            Expect.isFalse (before.any().item<bool> ()) "without the check the stuck chain reads as mixed"
    ]

/// The importance-weighted bound as a training objective (Burda et al. 2015, eq. 8) and the doubly reparameterised
/// encoder gradient (Tucker et al. 2018), checked in float64 against finite differences, closed forms and each other.
module Vae.Properties.ImportanceWeightedObjectiveProperties

open System
open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private item (t: Tensor) = t.item<double> ()

let private modelOf (likelihood: Likelihood) (seed: int64) (d: int) (h: int) (j: int) (initStd: float) =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = likelihood; DType = f64; InitStd = initStd; HiddenLayers = 1 } (Torch.generator seed)

let private dataOf (likelihood: Likelihood) (seed: int64) (m: int) (d: int) =
    let g = Torch.generator (seed + 1000L)
    let x = torch.rand([| int64 m; int64 d |], dtype = f64, generator = g)
    if likelihood = Bernoulli then torch.bernoulli(x, generator = g) else x

/// The mean of draws and its standard error.
let private meanAndError (draws: float[]) =
    let mean = Array.average draws
    mean, sqrt ((draws |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (draws.Length - 1) / float draws.Length)

/// The encoder's gradient (flattened) of one minibatch under the given encoder gradient, from Aevb.gradients.
let private encoderGradient (encoderGradient: EncoderGradient) (m: VaeModel) (x: Tensor) (eps: Tensor) =
    let c = { LearnerConfig.paper 0.02 with Estimator = Iwae; Samples = int eps.shape.[0]; WeightPrior = false; EncoderGradient = encoderGradient }
    let objective = (ElboEstimator.Iwae m x eps).sum()
    let grads = Aevb.gradients c 1L m x eps objective
    let encoder = (VaeModel.encoderParameters m).Length
    torch.cat(grads.[.. encoder - 1] |> Array.map (fun t -> t.flatten()), 0L), grads.[encoder ..]

[<Tests>]
let tests =
    testList "importance-weighted objective" [
        testPropertyWithConfig (config 10) "at K = 1 the importance-weighted objective is estimator A" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let m = modelOf Bernoulli (int64 seed) 7 5 3 0.5
            let x = dataOf Bernoulli (int64 seed) 4 7
            let eps = torch.randn([| 1L; 4L; 3L |], dtype = f64, generator = Torch.generator (int64 seed + 3L))
            item ((ElboEstimator.Iwae m x eps - ElboEstimator.A m x eps).abs().max()) <= 1e-12

        for likelihood in [ Bernoulli; GaussianSigmoidMean; Gaussian; LinearGaussian ] do
            for gradient in [ Reparameterised; DoublyReparameterised ] do
                // The decoder's gradient is the objective's under both; the encoder's is the objective's only for the plain
                // choice (DReG's equals it in expectation, checked below).
                testPropertyWithConfig (config 3) (sprintf "the importance-weighted objective's gradient equals central finite differences (%A decoder, %A encoder gradient, float64)" likelihood gradient) <| fun (seed: int) ->
                    use _ = torch.NewDisposeScope()
                    let m = modelOf likelihood (int64 seed) 5 4 2 0.5 |> VaeModel.requireGrad true
                    let x = dataOf likelihood (int64 seed) 3 5
                    let eps = torch.randn([| 4L; 3L; 2L |], dtype = f64, generator = Torch.generator (int64 seed + 5L))
                    let c = { LearnerConfig.paper 0.02 with Estimator = Iwae; Samples = 4; EncoderGradient = gradient }
                    let objective () = fst (Aevb.objective c 1000L m x eps)
                    let grads = Aevb.gradients c 1000L m x eps (objective ())
                    let checkedParameters = if gradient = Reparameterised then VaeModel.parameters m else VaeModel.decoderParameters m
                    let offset = (VaeModel.parameters m).Length - checkedParameters.Length
                    checkedParameters |> List.indexed |> List.forall (fun (i, p) ->
                        let fd = Torch.finiteDifferences (fun () -> item (objective ())) p.Tensor 1e-6
                        let ad = grads.[offset + i].contiguous().data<double>().ToArray()
                        Array.forall2 (fun (a: double) (b: double) -> abs (a - b) <= 1e-6 * (1.0 + abs a)) ad fd)

        testCase "on a linear-Gaussian model the objective's expectation is the closed-form ELBO at K = 1 and rises with K to the exact log p(x)" <| fun () ->
            use _ = torch.NewDisposeScope()
            // Factor analysis with a random MLP encoder: q(z|x) is a poor proposal, so the ELBO is well below log p(x).
            let m = modelOf LinearGaussian 21L 4 6 2 0.7
            let x = torch.randn([| 10L; 4L |], dtype = f64, generator = Torch.generator 22L)
            let exact = item ((VaeModel.exactLogLikelihood m x).mean())
            let elbo = item ((closedFormElbo m x).mean())
            let g = Torch.generator 23L
            use _ = torch.no_grad ()
            let expectation k draws =
                meanAndError [| for _ in 1 .. draws -> item ((ElboEstimator.Iwae m x (ElboEstimator.noise k 10 m g)).mean()) |]
            let means = [ for k, draws in [ 1, 4000; 5, 2000; 50, 400; 1000, 100 ] -> k, expectation k draws ]
            let (_, (k1, se1)) = means.Head
            Expect.isLessThan (abs (k1 - elbo)) (5.0 * se1) (sprintf "K = 1: %.4f against the closed-form ELBO %.4f (SE %.4f)" k1 elbo se1)
            for (k, (a, sa)), (k', (b, sb)) in List.pairwise means do
                Expect.isGreaterThan b (a + 3.0 * sqrt (sa * sa + sb * sb)) (sprintf "K = %d (%.4f) above K = %d (%.4f)" k' b k a)
            for k, (v, se) in means do
                Expect.isLessThan v (exact + 5.0 * se) (sprintf "K = %d: %.4f is a lower bound on the exact %.4f" k v exact)
            let (_, (last, _)) = List.last means
            // The remaining gap falls like Var(w) / (2 K) (Burda et al., Theorem 1 and the delta method): here about 6 % at K = 1000.
            Expect.isLessThan (exact - last) (0.1 * (exact - elbo)) (sprintf "K = 1000 closes 90 %% of the ELBO's gap: %.4f, %.4f, exact %.4f" last elbo exact)

        testCase "the doubly reparameterised encoder gradient has the plain one's expectation and a lower variance (K = 10)" <| fun () ->
            use _ = torch.NewDisposeScope()
            let m = modelOf Bernoulli 31L 8 6 3 0.5 |> VaeModel.requireGrad true
            let x = dataOf Bernoulli 31L 2 8
            let g = Torch.generator 32L
            // The same noise for both: the paired difference's mean must vanish within 5 standard errors in every coordinate.
            let plain, dreg =
                [| for _ in 1 .. 1500 ->
                     use _ = torch.NewDisposeScope()
                     let eps = ElboEstimator.noise 10 2 m g
                     let p, pd = encoderGradient Reparameterised m x eps
                     let d, dd = encoderGradient DoublyReparameterised m x eps
                     Array.iter2 (fun (a: Tensor) (b: Tensor) -> Expect.equal (item ((a - b).abs().max())) 0.0 "the decoder's gradient is the objective's under both") pd dd
                     p.MoveToOuterDisposeScope(), d.MoveToOuterDisposeScope() |] |> Array.unzip
            let plain, dreg = torch.stack(plain), torch.stack(dreg)
            let diff = dreg - plain
            let z = diff.mean([| 0L |]).abs() / (diff.std(0L) / sqrt 1500.0 + 1e-12)
            Expect.isLessThan (item (z.max())) 5.0 "every coordinate's mean difference within 5 standard errors"
            let varPlain, varDreg = item (plain.var(0L).sum()), item (dreg.var(0L).sum())
            Expect.isLessThan varDreg (0.5 * varPlain) (sprintf "total variance: doubly reparameterised %.4g, plain %.4g" varDreg varPlain)

        testCase "a run with the importance-weighted objective trains, records it in its checkpoint, and refuses what does not apply" <| fun () ->
            use _ = torch.NewDisposeScope()
            let settings learner algorithm =
                { Algorithm = algorithm; Model = (modelOf Bernoulli 1L 12 5 2 0.01).Config; Learner = learner; Seed = 4L; Dataset = "test" }
            let iwae = { LearnerConfig.paper 0.05 with Estimator = Iwae; Samples = 5; BatchSize = 10; EncoderGradient = DoublyReparameterised }
            let data = torch.bernoulli(torch.rand([| 40L; 12L |], dtype = f64, generator = Torch.generator 5L) * 0.8 + 0.1)
            let run = TrainingRun.create (settings iwae AevbAlgorithm)
            let before = VaeModel.tensors run.State.Model |> Array.map (fun t -> t.clone())
            let trained = TrainingRun.fit data 150L Threading.CancellationToken.None (fun _ bound -> Expect.isTrue (Double.IsFinite bound) "a finite bound") run
            Expect.equal (TrainingRun.gradientPath trained) "hand-derived" "LogWeightSteps covers it, reported"
            let moved = Array.map2 (fun (a: Tensor) (b: Tensor) -> item ((a - b).abs().max())) before (VaeModel.tensors trained.State.Model)
            Expect.isTrue (moved |> Array.forall (fun v -> v > 0.0)) "every parameter moved"
            let restored = TrainingRun.ofCheckpoint "run" (TrainingRun.toCheckpoint Map.empty trained)
            Expect.equal restored.Settings.Learner.Estimator Iwae "the checkpoint keeps the objective"
            Expect.equal restored.Settings.Learner.EncoderGradient DoublyReparameterised "and the encoder gradient"
            Expect.equal restored.Settings.Learner.Samples 5 "and K"
            Expect.throwsT<ArgumentException> (fun () -> TrainingRun.create (settings iwae WakeSleepAlgorithm) |> ignore) "wake-sleep refuses it"
            Expect.throwsT<ArgumentException> (fun () -> TrainingRun.create (settings { iwae with Estimator = B } AevbAlgorithm) |> ignore) "DReG needs the importance-weighted bound"
    ]

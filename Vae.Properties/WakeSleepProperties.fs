/// Wake-sleep's variants against independent references: anglepy's recognition model trained in its own coordinates,
/// and the distributions of the fantasies.
module Vae.Properties.WakeSleepProperties

open Expecto
open TorchSharp
open Vae
open Vae.Core
open Vae.Properties.Generators

let private maxAbs (a: Tensor) (b: Tensor) = (a - b).abs().max().item<double> ()

/// anglepy's recognition model in its own coordinates (MLBN_Inverse.factors): log sigma^2 = 0.1 W h + b, where r's
/// encoder.logvar.weight holds W itself.
let private anglepyEncode (r: VaeModel) (x: Tensor) : Distributions.DiagonalGaussian =
    let e = r.Encoder
    let h = (x.matmul(e.Hidden.Weight.t()) + e.Hidden.Bias).tanh()
    { Mean = h.matmul(e.Mean.Weight.t()) + e.Mean.Bias; LogVar = h.matmul(e.LogVar.Weight.t()) * 0.1 + e.LogVar.Bias }

/// Fantasies as anglepy's generative models draw them, written out: Bernoulli probabilities 1e-3 + (1 - 2e-3) sigmoid
/// (MLBN.gen_xz), Gaussian draws unclipped.
let private anglepyFantasies (r: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
    match r.Decoder with
    | BernoulliDecoder p ->
        let h = (z.matmul(p.Hidden.Weight.t()) + p.Hidden.Bias).tanh()
        let probabilities = (h.matmul(p.Logits.Weight.t()) + p.Logits.Bias).sigmoid() * (1.0 - 2e-3) + 1e-3
        torch.bernoulli(probabilities, generator = g)
    | GaussianDecoder p ->
        let h = (z.matmul(p.Hidden.Weight.t()) + p.Hidden.Bias).tanh()
        let mean = h.matmul(p.Mean.Weight.t()) + p.Mean.Bias
        let mean = if r.Config.Likelihood = GaussianSigmoidMean then mean.sigmoid() else mean
        let logVar = h.matmul(p.LogVar.Weight.t()) + p.LogVar.Bias
        mean + (logVar * 0.5).exp() * torch.randn(mean.shape, dtype = mean.dtype, generator = g)
    | LinearGaussianDecoder _ -> failwith "the reference covers the MLP decoders"

/// One step of anglepy's wake-sleep (wzoptim.step_wakesleep) on reference parameters r in anglepy's coordinates:
/// autograd gradients of log p(x, z) (decoder) and log q(zp|xp) (encoder, raw W) with the N(0, 1) weight prior scaled
/// by M/N, and Adagrad written out per tensor, w += eta g / sqrt(G + 1e-8) after the warm-up. With wakeFirst the decoder
/// moves before the fantasies are drawn (step_wakesleep's order), else both gradients are taken before either update;
/// draws are made in WakeSleep.step's order, so that only the coordinates differ.
let private anglepyStep (wakeFirst: bool) (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (r: VaeModel) (sums: Tensor[]) (steps: int64) =
    use _ = torch.NewDisposeScope()
    let n = float data.shape.[0]
    let x = Learner.minibatch c data g
    let eps = torch.randn([| int64 c.BatchSize; int64 r.Config.LatentDim |], dtype = f64, generator = g)
    let q = anglepyEncode r x
    let z = (q.Mean + (q.LogVar * 0.5).exp() * eps).detach()
    let weightPrior (ps: NamedParameter list) =
        ps |> List.filter (fun p -> p.IsWeight) |> List.map (fun p -> (p.Tensor * p.Tensor).sum() * (-0.5 * float c.BatchSize / n)) |> List.reduce (+)
    let decoder, encoder = VaeModel.decoderParameters r, VaeModel.encoderParameters r
    let wake = (VaeModel.logLikelihood r z x + Distributions.standardNormalLogDensity z).sum() + weightPrior decoder
    let wakeGrads = torch.autograd.grad([| wake |], decoder |> List.map (fun p -> p.Tensor) |> List.toArray) |> Seq.toArray
    let adagrad = Optimizer.adagrad c.Optimizer
    // Adagrad on the tensors of ps from index first (sums are in encoder @ decoder order).
    let update (first: int) (ps: NamedParameter list) (grads: Tensor[]) =
        use _ = torch.no_grad ()
        grads |> Array.iteri (fun k gr ->
            sums.[first + k].add_(gr * gr) |> ignore
            if steps > int64 adagrad.WarmUp then ps.[k].Tensor.add_(gr * adagrad.StepSize / (sums.[first + k] + 1e-8).sqrt()) |> ignore)
    if wakeFirst then update encoder.Length decoder wakeGrads
    let zp = torch.randn([| int64 c.BatchSize; int64 r.Config.LatentDim |], dtype = f64, generator = g)
    let xp = Torch.noGrad (fun () -> anglepyFantasies r zp g)
    let sleep = (Distributions.gaussianLogDensity (anglepyEncode r xp) zp).sum() + weightPrior encoder
    let sleepGrads = torch.autograd.grad([| sleep |], encoder |> List.map (fun p -> p.Tensor) |> List.toArray) |> Seq.toArray
    update 0 encoder sleepGrads
    if not wakeFirst then update encoder.Length decoder wakeGrads

/// A float64 model with parameters spread wide enough that every term matters.
let private modelOf (likelihood: Likelihood) (seed: int64) =
    VaeModel.create { InputDim = 12; HiddenUnits = 7; LatentDim = 3; Likelihood = likelihood; DType = f64; InitStd = 0.3; HiddenLayers = 1 } (Torch.generator seed)

[<Tests>]
let tests =
    testList "wake-sleep variants" [
        // In both phase orders: step_wakesleep's own (the decoder moves, then the fantasies) and gradients first.
        testTheory "anglepy's recognition model trained as W' = 0.1 W follows anglepy's own coordinates: W' = 0.1 W after 60 steps"
            [ for l in [ Bernoulli; GaussianSigmoidMean ] do for o in [ GradientsFirst; WakeUpdateFirst ] -> l, o ] <| fun (likelihood, order) ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 200L; 12L |], dtype = f64, generator = Torch.generator 4L)
            let c = { LearnerConfig.paper 0.05 with BatchSize = 10; WakeSleep = Anglepy; WakeSleepOrder = order; Optimizer = AdagradOptimizer { Adagrad.paper 0.05 with WarmUp = 5 } }
            // A start with non-zero log-variance weights, so that their scale is exercised from the first step.
            let mutable ours = Aevb.init (modelOf likelihood 3L)
            let reference = VaeModel.copy ours.Model
            Torch.noGrad (fun () -> reference.Encoder.LogVar.Weight.mul_(Torch.constant 10.0) |> ignore)
            VaeModel.requireGrad true reference |> ignore
            let sums = VaeModel.tensors reference |> Array.map (fun t -> torch.zeros_like(t))
            let gOurs, gReference = Torch.generator 8L, Torch.generator 8L
            for step in 0L .. 59L do
                ours <- fst (WakeSleep.step c data gOurs ours)
                anglepyStep (order = WakeUpdateFirst) c data gReference reference sums step
            let expected = VaeModel.tensors (VaeModel.copy reference)
            Torch.noGrad (fun () -> expected.[4].mul_(Torch.constant 0.1) |> ignore) // encoder.logvar.weight: W' = 0.1 W
            Expect.equal (VaeModel.parameters ours.Model).[4].Name WakeSleepVariant.scaledParameter "the scaled parameter's place"
            let worst = Array.map2 maxAbs (VaeModel.tensors ours.Model) expected |> Array.max
            Expect.isLessThan worst 1e-10 "every parameter, in the model's coordinates"
            Expect.isGreaterThan (maxAbs expected.[4] ((VaeModel.tensors (modelOf likelihood 3L)).[4])) 1e-3 "the log-variance weights moved"

        testCase "when the decoder has moved first and the sleep phase is not finite, the step raises with every parameter and accumulator as before" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 50L; 12L |], dtype = f64, generator = Torch.generator 4L)
            let c = { LearnerConfig.paper 0.05 with BatchSize = 10; WakeSleepOrder = WakeUpdateFirst; Optimizer = AdagradOptimizer { Adagrad.paper 0.05 with WarmUp = 0 } }
            // Past Adagrad's first step (it moves from step WarmUp + 1), so that the decoder's update is a real one.
            let pastFirst (s: TrainerState) = { s with Optimizer = { s.Optimizer with Steps = 5L } }
            let s = pastFirst (Aevb.init (modelOf Bernoulli 3L))
            // q's variance underflows to 0: the wake phase (z = the mean, log q of the noise) stays finite, the sleep
            // phase's log q(zp|xp) does not.
            Torch.noGrad (fun () -> s.Model.Encoder.LogVar.Weight.zero_() |> ignore; s.Model.Encoder.LogVar.Bias.fill_(Torch.scalar -1e4) |> ignore)
            let before = VaeModel.tensors s.Model |> Array.map (fun t -> t.detach().clone())
            let sumsBefore = s.Optimizer.SumSquares |> Array.map (fun t -> t.clone())
            Expect.throwsT<NonFiniteBoundException> (fun () -> WakeSleep.step c data (Torch.generator 1L) s |> ignore) "the sleep phase is refused"
            Array.iteri2 (fun i (a: Tensor) (b: Tensor) -> Expect.isTrue (sameBits a b) (sprintf "parameter %d" i)) before (VaeModel.tensors s.Model)
            Array.iteri2 (fun i (a: Tensor) (b: Tensor) -> Expect.isTrue (sameBits a b) (sprintf "accumulator %d" i)) sumsBefore s.Optimizer.SumSquares
            // The same step with a finite encoder moves the decoder (the check above is not vacuous).
            let fine = pastFirst (Aevb.init (modelOf Bernoulli 3L))
            let moved = fst (WakeSleep.step c data (Torch.generator 1L) fine)
            Expect.isFalse (sameBits (VaeModel.tensors (modelOf Bernoulli 3L)).[6] (VaeModel.tensors moved.Model).[6]) "a finite step moves the decoder"

        testCase "a run with anglepy's recognition model starts from a zero log-variance layer and the shared encoder's other draws" <| fun () ->
            use _ = torch.NewDisposeScope()
            let settings variant =
                { Algorithm = WakeSleepAlgorithm; Model = (modelOf Bernoulli 1L).Config; Learner = { LearnerConfig.paper 0.02 with WakeSleep = variant }
                  Seed = 6L; Dataset = "test" }
            let anglepy, shared = TrainingRun.create (settings Anglepy), TrainingRun.create (settings SharedEncoder)
            for a, s in List.zip (VaeModel.parameters anglepy.State.Model) (VaeModel.parameters shared.State.Model) do
                if a.Name.StartsWith "encoder.logvar" then Expect.equal (a.Tensor.abs().max().item<double> ()) 0.0 a.Name
                else Expect.equal (maxAbs a.Tensor s.Tensor) 0.0 a.Name
            let restored = TrainingRun.ofCheckpoint "run" (TrainingRun.toCheckpoint Map.empty anglepy)
            Expect.equal restored.Settings.Learner.WakeSleep Anglepy "the checkpoint keeps the variant"
            Expect.throwsT<System.ArgumentException> (fun () -> TrainingRun.create { settings Anglepy with Algorithm = AevbAlgorithm } |> ignore) "AEVB refuses it"

        testCase "anglepy's Gaussian fantasies are N(mean, sigma^2) unclipped; sampleData clips the sigmoid-mean decoder's to [0, 1]" <| fun () ->
            use _ = torch.NewDisposeScope()
            let m = modelOf GaussianSigmoidMean 2L
            // sigma = 0.5 around means in (0, 1): a third of the draws fall outside [0, 1].
            let logVar = match m.Decoder with GaussianDecoder p -> p.LogVar | _ -> failwith "Gaussian"
            Torch.noGrad (fun () -> logVar.Weight.zero_() |> ignore; logVar.Bias.fill_(Torch.scalar (log 0.25)) |> ignore)
            let z = torch.randn([| 1L; 3L |], dtype = f64, generator = Torch.generator 1L).expand(40000L, 3L)
            let mean = Torch.noGrad (fun () -> VaeModel.decodeMean m z)
            let unclipped: Tensor = Torch.noGrad (fun () -> VaeModel.sampleDataUnclipped m z (Torch.generator 2L))
            let clipped = Torch.noGrad (fun () -> VaeModel.sampleData m z (Torch.generator 2L))
            // Mean within 5 standard errors (0.5 / sqrt 40000) in every dimension; variance within 5 % of 0.25.
            Expect.isLessThan (maxAbs (unclipped.mean([| 0L |])) (mean.[0L])) (5.0 * 0.5 / 200.0) "the draws' means"
            Expect.isLessThan (maxAbs (unclipped.var(0L)) (torch.full_like(mean.[0L], 0.25))) (0.05 * 0.25) "the draws' variances"
            Expect.isGreaterThan ((unclipped.gt(Torch.scalar 1.0).logical_or(unclipped.lt(Torch.scalar 0.0))).to_type(f64).mean().item<double> ()) 0.1 "draws outside [0, 1]"
            Expect.equal (maxAbs clipped (unclipped.clamp(Torch.constant 0.0, Torch.constant 1.0))) 0.0 "sampleData: the same draws, clipped"

        testCase "anglepy's Bernoulli fantasies hold the probabilities in [0.001, 0.999]" <| fun () ->
            use _ = torch.NewDisposeScope()
            let m = modelOf Bernoulli 2L
            let logits = match m.Decoder with BernoulliDecoder p -> p.Logits | _ -> failwith "Bernoulli"
            // Logits of -60 for the first half of the pixels and +60 for the rest: p(x = 1) = 0.001 and 0.999.
            Torch.noGrad (fun () ->
                logits.Weight.zero_() |> ignore
                logits.Bias.narrow(0L, 0L, 6L).fill_(Torch.scalar -60.0) |> ignore
                logits.Bias.narrow(0L, 6L, 6L).fill_(Torch.scalar 60.0) |> ignore)
            let z = torch.zeros([| 50000L; 3L |], dtype = f64)
            let x = Torch.noGrad (fun () -> VaeModel.sampleDataUnclipped m z (Torch.generator 3L))
            let ones = x.narrow(1L, 0L, 6L).sum().item<double> ()
            let zeros = 300000.0 - x.narrow(1L, 6L, 6L).sum().item<double> ()
            // Each count is Binomial(300000, 0.001): mean 300, standard deviation 17.3.
            for count, what in [ ones, "ones at logit -60"; zeros, "zeros at logit +60" ] do
                Expect.isLessThan (abs (count - 300.0)) (5.0 * 17.3) what
            Expect.equal ((Torch.noGrad (fun () -> VaeModel.sampleData m z (Torch.generator 3L))).narrow(1L, 0L, 6L).sum().item<double> ()) 0.0 "sampleData: none"
    ]

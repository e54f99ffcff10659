/// Burda et al.'s encoder scale head (sigma = exp(W' h + b'), iwae.py's sigma_network) as coordinates of Adam: a run
/// with EncoderScaleHead.LogStandardDeviation must take the steps of Adam on an encoder whose head really is log sigma.
module Vae.Properties.EncoderScaleHeadProperties

open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private config = { InputDim = 8; HiddenUnits = 6; LatentDim = 3; Likelihood = Bernoulli; DType = f64; InitStd = 0.01; HiddenLayers = 2 }

let private data () = torch.bernoulli(torch.rand([| 40L; 8L |], dtype = f64, generator = Torch.generator 11L), generator = Torch.generator 12L)

let private settingsWith encoderGradient estimator samples variant head =
    { Algorithm = AevbAlgorithm; Model = config; Seed = 5L; Dataset = "head"
      Learner = { LearnerConfig.paper 0.02 with BatchSize = 10; Estimator = estimator; Samples = samples; Initialization = GlorotUniform; ScaleHead = head
                                                EncoderGradient = encoderGradient
                                                Optimizer = AdamOptimizer { Adam.burda 0.01 ConstantStepSize with Variant = variant } } }

let private settings = settingsWith Reparameterised

/// The run as Burda et al.'s code trains it, written independently of EncoderScaleHead: every parameter an autograd
/// leaf, the head's leaves W' and b' drawn as the run draws them, the encoder computing log sigma^2 = 2 (W' h + b'), and
/// Adam stepping on the leaves; with the doubly reparameterised gradient the encoder's leaves take the surrogate's
/// gradient. The weight prior is on the model's parameters (2 W' for the head). Returns the model's parameters (the
/// head as 2 W', 2 b') after the given steps.
let private theirs (s: RunSettings) (x: Tensor) (steps: int) : Tensor =
    let g = Torch.generator s.Seed
    let drawn = VaeModel.create s.Model g |> VaeModel.glorotUniform g
    let names = VaeModel.parameters drawn |> List.map (fun p -> p.Name)
    let leaves = VaeModel.tensors drawn |> Array.map (fun t -> t.detach().clone().requires_grad_(true))
    let leafOf = dict (List.zip names (List.ofArray leaves))
    let isHead (name: string) = name.StartsWith "encoder.logvar."
    let mutable state = Optimizer.init s.Learner.Optimizer leaves
    let model () = VaeModel.assemble s.Model (fun name -> if isHead name then leafOf.[name].mul(Torch.constant 2.0) else leafOf.[name]) null
    for step in 0 .. steps - 1 do
        let m = model ()
        let mb = Learner.minibatchAt s.Learner x g (int64 step)
        let eps = ElboEstimator.noise s.Learner.Samples s.Learner.BatchSize m g
        let objective, _ = Aevb.objective s.Learner x.shape.[0] m mb eps
        let grads =
            match s.Learner.EncoderGradient with
            | Reparameterised -> torch.autograd.grad([| objective |], leaves) |> Seq.toArray
            | DoublyReparameterised ->
                let encoderCount = VaeModel.encoderParameters drawn |> List.length
                let surrogate = Learner.withWeightPrior s.Learner x.shape.[0] (VaeModel.parameters m) ((ElboEstimator.iwaeEncoderSurrogate m mb eps).sum())
                Array.append (torch.autograd.grad([| surrogate |], leaves.[.. encoderCount - 1]) |> Seq.toArray)
                             (torch.autograd.grad([| objective |], leaves.[encoderCount ..]) |> Seq.toArray)
        state <- Optimizer.ascend s.Learner.Optimizer (Learner.passes s.Learner x.shape.[0] (int64 step)) state leaves grads
    use _ = torch.no_grad ()
    VaeModel.vectorOf s.Model (VaeModel.tensors (model ()))

[<Tests>]
let tests =
    testList "encoder scale head" [
        // Estimator B with two tanh layers trains by autograd, whose chain rule through 2 W' is the doubling itself: the
        // same bits. The importance-weighted bound trains by the hand-derived log-weight step (its flat Adam update must
        // take the head in the same coordinates), also with the doubly reparameterised encoder gradient: rounding only.
        for estimator, samples, encoderGradient, path in [ B, 1, Reparameterised, "autograd"; Iwae, 3, Reparameterised, "hand-derived"
                                                           Iwae, 3, DoublyReparameterised, "hand-derived, DReG" ] do
          for variant in [ KingmaBa; BurdaCode ] do
            testCase (sprintf "a log-sigma head run takes Adam's steps on W' and b' of sigma = exp(W' h + b') (%s, %s)" path (AdamVariant.name variant)) <| fun () ->
                use _ = torch.NewDisposeScope()
                let x = data ()
                let s = settingsWith encoderGradient estimator samples variant LogStandardDeviation
                let start = TrainingRun.create s
                Expect.equal (TrainingRun.gradientPath start) (path.Split(',').[0]) "the gradient path under test"
                let run = fitTo x 6L start
                let expected = theirs s x 6
                if path = "autograd" then Expect.isTrue (sameBits run.State.Model.ParameterVector expected) "the parameters of Adam on Burda et al.'s coordinates, bit for bit"
                else
                    // Autograd's and the hand-derived chain rules differ in the order of their float64 sums.
                    let gap = run.State.Model.ParameterVector.sub(expected).abs().max().item<float> ()
                    Expect.isLessThan gap 1e-10 "the parameters of Adam on Burda et al.'s coordinates"
                // The setting matters at this size: the log-variance head's run ends elsewhere.
                let plain = fitTo x 6L (TrainingRun.create (settingsWith encoderGradient estimator samples variant LogVariance))
                Expect.isGreaterThan (plain.State.Model.ParameterVector.sub(expected).abs().max().item<float> ()) 1e-4 "the log-variance run differs"

        testCase "the head's draws are doubled into the model's log-variance head and nothing else changes" <| fun () ->
            use _ = torch.NewDisposeScope()
            let s = { settings B 1 KingmaBa LogStandardDeviation with Learner = { (settings B 1 KingmaBa LogStandardDeviation).Learner with Initialization = PaperNormal } }
            let head = TrainingRun.create s
            let plain = TrainingRun.create { s with Learner = { s.Learner with ScaleHead = LogVariance } }
            for p, q in List.zip (VaeModel.parameters head.State.Model) (VaeModel.parameters plain.State.Model) do
                let factor = if p.Name.StartsWith "encoder.logvar." then 2.0 else 1.0
                Expect.isTrue (sameBits p.Tensor (q.Tensor.mul(Torch.constant factor))) (sprintf "%s is %g times the draw" p.Name factor)

        testCase "a log-sigma head run stopped at a checkpoint and resumed ends bit for bit as the uninterrupted run" <| fun () ->
            use _ = torch.NewDisposeScope()
            let x = data ()
            let s = settings Iwae 3 BurdaCode LogStandardDeviation
            let whole = TrainingRun.create s |> fitTo x 9L
            let bytes = Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty (TrainingRun.create s |> fitTo x 4L))
            let resumed = TrainingRun.ofCheckpoint "head.vae" (Checkpoint.ofBytes "head.vae" bytes)
            Expect.equal resumed.Settings.Learner.ScaleHead LogStandardDeviation "the checkpoint keeps the head"
            Expect.isTrue (sameBits whole.State.Model.ParameterVector (fitTo x 9L resumed).State.Model.ParameterVector) "the parameters"
            let paper = Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty (TrainingRun.create (settings Iwae 3 BurdaCode LogVariance)))
            let fields = (Checkpoint.ofBytes "paper.vae" paper).Fields
            Expect.isFalse (fields.ContainsKey "aevb.encoder_scale_head") "a log-variance run writes no head field, as before the setting"

        for label, algorithm, optimizer in [ "Adagrad", AevbAlgorithm, Optimizer.paper 0.02
                                             "wake-sleep", WakeSleepAlgorithm, AdamOptimizer(Adam.burda 0.01 ConstantStepSize) ] do
          testCase (sprintf "%s refuses the log-sigma head, naming the setting" label) <| fun () ->
            let s = settings B 1 KingmaBa LogStandardDeviation
            let e = Expect.throwsC (fun () -> TrainingRun.create { s with Algorithm = algorithm; Learner = { s.Learner with Optimizer = optimizer } } |> ignore) id
            Expect.stringContains e.Message "ScaleHead" "names the setting"
            Expect.stringContains e.Message "Adam" "says what it needs"
    ]

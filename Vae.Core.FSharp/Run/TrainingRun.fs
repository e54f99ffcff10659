namespace Vae.Core

open Vae
open System
open System.Threading
open TorchSharp

/// The learning algorithm of a training run.
type Algorithm =
    /// Auto-Encoding Variational Bayes (Algorithm 1).
    | AevbAlgorithm
    /// The wake-sleep baseline.
    | WakeSleepAlgorithm
    /// The Monte Carlo EM baseline (no recognition model).
    | McemAlgorithm

/// What a training run is: the algorithm, the model, the settings (minibatch, optimiser, prior; the
/// estimator applies to AEVB), the seed and the data set's name.
type RunSettings =
    { Algorithm: Algorithm
      Model: ModelConfig
      Learner: LearnerConfig
      Seed: int64
      /// The data set's name and split, recorded in reports and checkpoints.
      Dataset: string }

/// A training run in progress: settings, state, the generator that drives all its sampling, and the
/// number of steps taken. Parameters and optimiser state are updated in place by fit.
type TrainingRun =
    { Settings: RunSettings
      State: TrainerState
      Generator: torch.Generator
      Step: int64 }
    /// Training samples evaluated so far: steps x M, or for Monte Carlo EM steps x Mcem.samplesPerIteration N.
    member r.SamplesSeen =
        r.Step * (match r.State.Mcmc with Some mc -> Mcem.samplesPerIteration mc.Chains.shape.[0] | None -> int64 r.Settings.Learner.BatchSize)

/// A setting a checkpoint records as one of named values: its field, the LearnerConfig field it sets (named in
/// errors), the value a checkpoint without the field means, and every value's name. The writer and the reader both
/// use one table per setting, so each name is spelled once.
type internal RecordedChoice<'a when 'a: equality> =
    { Field: string; Setting: string; Absent: 'a; Names: ('a * string) list }
    /// The name the field records for v.
    member c.NameOf(v: 'a) = c.Names |> List.pick (fun (x, n) -> if x = v then Some n else None)
    /// The field's entry.
    member c.Entry(v: 'a) = [ c.Field, c.NameOf v ]
    /// The field's entry when v differs from what its absence means, else none (so that the paper's checkpoints keep
    /// their fields).
    member c.EntryWhenChosen(v: 'a) = if v = c.Absent then [] else c.Entry v

[<RequireQualifiedAccess>]
module TrainingRun =

    /// Frees the run's native memory: the model's parameters, Adagrad's accumulators, Monte Carlo EM's chains and the generator. The run cannot be used afterwards.
    let dispose (r: TrainingRun) =
        VaeModel.dispose r.State.Model
        OptimizerState.dispose r.State.Optimizer
        r.State.Mcmc |> Option.iter (fun mc -> mc.Chains.Dispose())
        r.Generator.Dispose()

    let private inv = ModelCheckpoint.inv

    /// Whether HandDerivedSteps's hand-derived step covers the run's algorithm and configuration.
    let private covered (s: RunSettings) (state: TrainerState) =
        match s.Algorithm with
        | AevbAlgorithm -> HandDerivedSteps.supports s.Learner state.Model
        | WakeSleepAlgorithm -> HandDerivedSteps.supportsWakeSleep s.Learner state.Model
        | McemAlgorithm -> false

    /// Whether the run's steps are HandDerivedSteps's hand-derived ones rather than its algorithm's autograd step: as the
    /// settings' Gradient says (Auto: wherever the hand-derived step covers the configuration).
    let private fused (s: RunSettings) (state: TrainerState) =
        s.Learner.Gradient <> Autograd && covered s state

    /// Whether the run's steps are LogWeightSteps's hand-derived ones (AEVB with estimator A or the importance-weighted
    /// bound, a Bernoulli decoder of any depth, either optimiser), as the settings' Gradient says.
    let private logWeight (s: RunSettings) (state: TrainerState) =
        s.Learner.Gradient <> Autograd && s.Algorithm = AevbAlgorithm && LogWeightSteps.supports s.Learner state.Model

    /// The state a run with settings s starts from: checked for what mixed precision and the gradient choice need,
    /// and, when a hand-derived step trains it, with the optimiser's accumulators gathered into vectors laid out as the
    /// parameter vector (HandDerivedSteps.prepare).
    let private forTraining (s: RunSettings) (state: TrainerState) : TrainerState =
        let adam = match s.Learner.Optimizer with AdamOptimizer _ -> true | AdagradOptimizer _ -> false
        if adam && s.Learner.WakeSleep <> SharedEncoder then
            invalidArg "WakeSleep" "anglepy's recognition model is trained in rescaled coordinates that Adagrad's settings describe; train it with Adagrad"
        if s.Learner.WakeSleepOrder <> GradientsFirst && s.Algorithm <> WakeSleepAlgorithm then
            invalidArg "WakeSleepOrder" "the order of the wake and sleep phases applies to wake-sleep only"
        if s.Learner.WakeSleep <> SharedEncoder && s.Algorithm <> WakeSleepAlgorithm then
            invalidArg "WakeSleep" "anglepy's recognition model and fantasies apply to wake-sleep only"
        if s.Learner.Estimator = Iwae && s.Algorithm <> AevbAlgorithm then
            invalidArg "Estimator" "the importance-weighted bound is an objective of AEVB (wake-sleep and Monte Carlo EM have their own)"
        if s.Learner.EncoderGradient = DoublyReparameterised && s.Learner.Estimator <> Iwae then
            invalidArg "EncoderGradient" (sprintf "the doubly reparameterised gradient is of the importance-weighted bound; estimator %A has none" s.Learner.Estimator)
        if s.Learner.Order <> WithReplacement && s.Algorithm = McemAlgorithm then
            invalidArg "Order" "Monte Carlo EM takes the whole training set at every iteration; it has no minibatch order"
        if s.Learner.OutputBias = TrainingMeanLogit && state.Model.Config.Likelihood <> Bernoulli then
            invalidArg "OutputBias" (sprintf "the output bias at the logit of the training mean is a Bernoulli decoder's; this decoder is %A" state.Model.Config.Likelihood)
        if s.Learner.ScaleHead = LogStandardDeviation && (not adam || s.Algorithm <> AevbAlgorithm) then
            invalidArg "ScaleHead" "the log-sigma head (Burda et al.'s code) is a parameterisation of AEVB under Adam; train it with AEVB and Adam"
        if s.Learner.MixedPrecision && s.Algorithm <> AevbAlgorithm then
            invalidArg "MixedPrecision" "mixed precision applies to AEVB only (wake-sleep and Monte Carlo EM train in the model's dtype)"
        if s.Learner.Gradient = OnePass && s.Algorithm <> AevbAlgorithm then
            invalidArg "Gradient" "the one-pass step is AEVB's (estimator B, L = 1, a Bernoulli decoder, float32); choose auto, autograd or hand-derived"
        HandDerivedSteps.requireSupported s.Learner state.Model
        if s.Learner.Gradient = Autograd && s.Learner.MixedPrecision then
            invalidArg "Gradient" "mixed precision has the hand-derived gradient only; choose auto or hand-derived"
        if s.Learner.Gradient = HandDerived && not (covered s state || logWeight s state) then
            invalidArg "Gradient"
                (sprintf "the hand-derived gradient covers AEVB (estimator B, L = 1) and wake-sleep with one-layer MLPs and Adagrad, and AEVB's estimator A and importance-weighted bound with a Bernoulli decoder, not this run (%s, estimator %A, L = %d, %A decoder, %d tanh layers, %s); choose auto or autograd"
                    (match s.Algorithm with AevbAlgorithm -> "AEVB" | WakeSleepAlgorithm -> "wake-sleep" | McemAlgorithm -> "Monte Carlo EM")
                    s.Learner.Estimator s.Learner.Samples state.Model.Config.Likelihood state.Model.Config.HiddenLayers (Optimizer.name s.Learner.Optimizer))
        if fused s state || logWeight s state then
            let prepared = HandDerivedSteps.prepare state
            // prepare gathered the accumulators into vectors: the per-parameter ones are nobody's now.
            if not (obj.ReferenceEquals(prepared.Optimizer.SumSquares, state.Optimizer.SumSquares)) then
                for t in Array.append state.Optimizer.SumSquares state.Optimizer.FirstMoments do t.Dispose()
            prepared
        else state

    // The settings a checkpoint records by name. Absent means: the value runs had before the field existed, or (for the
    // fields written only when chosen) the paper's.
    let private gradientChoice =
        { Field = "aevb.gradient"; Setting = "Gradient"; Absent = Auto
          Names = [ Auto, "auto"; Autograd, "autograd"; HandDerived, "hand-derived"; OnePass, "one-pass" ] }
    let private wakeSleepChoice =
        { Field = "aevb.wake_sleep_variant"; Setting = "WakeSleep"; Absent = SharedEncoder; Names = [ SharedEncoder, "shared-encoder"; Anglepy, "anglepy" ] }
    let private encoderGradientChoice =
        { Field = "aevb.encoder_gradient"; Setting = "EncoderGradient"; Absent = Reparameterised
          Names = [ Reparameterised, "reparameterised"; DoublyReparameterised, "doubly-reparameterised" ] }
    let private orderChoice =
        { Field = "aevb.minibatch_order"; Setting = "Order"; Absent = WithReplacement; Names = [ WithReplacement, "with-replacement"; InOrder, "in-order" ] }
    let private initializationChoice =
        { Field = "aevb.initialization"; Setting = "Initialization"; Absent = PaperNormal; Names = [ PaperNormal, "paper-normal"; GlorotUniform, "glorot-uniform" ] }
    let private outputBiasChoice =
        { Field = "aevb.decoder_output_bias"; Setting = "OutputBias"; Absent = Drawn; Names = [ Drawn, "drawn"; TrainingMeanLogit, "training-mean-logit" ] }
    let private scaleHeadChoice =
        { Field = "aevb.encoder_scale_head"; Setting = "ScaleHead"; Absent = LogVariance
          Names = [ for h in [ LogVariance; LogStandardDeviation ] -> h, EncoderScaleHead.name h ] }
    let private wakeSleepOrderChoice =
        { Field = "aevb.wake_sleep_order"; Setting = "WakeSleepOrder"; Absent = GradientsFirst
          Names = [ GradientsFirst, "gradients-first"; WakeUpdateFirst, "wake-update-first" ] }
    let private adamVariantChoice =
        { Field = "aevb.adam_variant"; Setting = "Optimizer"; Absent = KingmaBa; Names = [ for v in [ KingmaBa; BurdaCode ] -> v, AdamVariant.name v ] }

    /// The field that records each LearnerConfig setting a run can be refused for.
    let private fieldOfSetting =
        Map.ofList
            [ gradientChoice.Setting, gradientChoice.Field; wakeSleepChoice.Setting, wakeSleepChoice.Field
              encoderGradientChoice.Setting, encoderGradientChoice.Field; orderChoice.Setting, orderChoice.Field
              initializationChoice.Setting, initializationChoice.Field; outputBiasChoice.Setting, outputBiasChoice.Field
              scaleHeadChoice.Setting, scaleHeadChoice.Field; wakeSleepOrderChoice.Setting, wakeSleepOrderChoice.Field; "Estimator", "aevb.estimator"; "MixedPrecision", "aevb.mixed_precision" ]

    /// The wake-sleep variant as a checkpoint field's text.
    let wakeSleepVariantName (v: WakeSleepVariant) = wakeSleepChoice.NameOf v

    /// The gradient choice as a checkpoint field's text.
    let gradientName (g: GradientChoice) = gradientChoice.NameOf g

    /// The checkpoint's and options.txt's name of an encoder gradient.
    let encoderGradientName (g: EncoderGradient) = encoderGradientChoice.NameOf g

    /// How the run's steps compute their gradient, as reported in run headers and options.txt: "hand-derived" (HandDerivedSteps),
    /// "hand-derived, bfloat16 multiplies" (HandDerivedSteps with mixed precision), "hand-derived, one-pass float32"
    /// (HandDerivedSteps with OnePass) or "autograd" (the algorithm's own step).
    let gradientPath (r: TrainingRun) : string =
        if logWeight r.Settings r.State then "hand-derived"
        elif not (fused r.Settings r.State) then "autograd"
        elif r.Settings.Learner.MixedPrecision then "hand-derived, bfloat16 multiplies"
        elif r.Settings.Learner.Gradient = OnePass then "hand-derived, one-pass float32"
        else "hand-derived"

    /// A new run: the model initialised from the seed's generator, which then drives training.
    let create (s: RunSettings) : TrainingRun =
        let g = Torch.generator s.Seed
        let model = VaeModel.create s.Model g |> VaeModel.initialise s.Learner.Initialization g |> WakeSleepVariant.initialise s.Learner.WakeSleep
                    |> EncoderScaleHead.initialise s.Learner.ScaleHead
        { Settings = s; State = forTraining s (Aevb.initFor s.Learner.Optimizer model); Generator = g; Step = 0L }

    /// Checks that a run can train on n datapoints: a Monte Carlo EM run's chains belong to the training set
    /// they were made for. Raises ArgumentException otherwise.
    let requireTrainingSize (n: int64) (r: TrainingRun) =
        match r.State.Mcmc with
        | Some mc when mc.Chains.shape.[0] <> n ->
            invalidArg "data" (sprintf "this Monte Carlo EM run has chains for %d training datapoints, the data hold %d" mc.Chains.shape.[0] n)
        | _ -> ()

    /// Runs steps of the run's algorithm on data [N; D] until the step count reaches untilStep or goOn, which receives
    /// the run and the minibatch bound after each step, returns false: the stop condition of whoever owns the run (a
    /// checkpoint falling due, a cancellation). A non-finite bound raises NonFiniteBoundException and leaves the
    /// parameters of the last good step.
    let fitWhile (data: Tensor) (untilStep: int64) (goOn: TrainingRun -> float -> bool) (r: TrainingRun) : TrainingRun =
        Torch.resolveVectorFunctions ()
        let mutable run = r
        // The hand-derived steps (same draws, same trajectory) need their scratch for as long as this call trains.
        let workspace = if fused r.Settings r.State then Some(HandDerivedSteps.workspace r.Settings.Learner r.Settings.Model) else None
        // LogWeightSteps's scratch: the gradient, a vector laid out as the parameter vector, with the model's views.
        let logWeightGradient =
            if logWeight r.Settings r.State then
                let layout = VaeModel.layout r.Settings.Model
                Some(VaeModel.ofVector r.Settings.Model (torch.zeros([| layout.Count |], dtype = r.Settings.Model.DType)), layout.WeightCount)
            else None
        try
            let step =
                match r.Settings.Algorithm, workspace with
                | AevbAlgorithm, _ when logWeightGradient.IsSome ->
                    let gradient, weightCount = logWeightGradient.Value
                    run <- { run with State = HandDerivedSteps.prepare r.State }
                    fun c data g s -> LogWeightSteps.step c data g gradient weightCount s
                | AevbAlgorithm, Some w ->
                    // prepare copies nothing for a state that create or ofCheckpoint prepared.
                    run <- { run with State = HandDerivedSteps.prepare r.State }
                    fun c data g s -> HandDerivedSteps.step c data g w s
                | WakeSleepAlgorithm, Some w ->
                    run <- { run with State = HandDerivedSteps.prepare r.State }
                    fun c data g s -> HandDerivedSteps.wakeSleepStep c data g w s
                | AevbAlgorithm, _ -> Aevb.step
                | WakeSleepAlgorithm, _ -> WakeSleep.step
                | McemAlgorithm, _ -> Mcem.step
            // Burda et al.'s output bias is set from the data the run trains on, before its first step.
            if r.Step = 0L && r.Settings.Learner.OutputBias = TrainingMeanLogit then
                VaeModel.withOutputBiasAtDataMean data run.State.Model |> ignore
            // MCEM's chains are created on first use, when the training set's size is known.
            if r.Settings.Algorithm = McemAlgorithm && r.State.Mcmc.IsNone then
                run <- { run with State = { run.State with Mcmc = Some(Mcem.initChains run.State.Model data.shape.[0] run.Generator) } }
            requireTrainingSize data.shape.[0] run
            let mutable going = true
            while going && run.Step < untilStep do
                let state, bound = step run.Settings.Learner data run.Generator run.State
                run <- { run with State = state; Step = run.Step + 1L }
                going <- goOn run bound
            run
        finally
            workspace |> Option.iter (fun w -> (w :> IDisposable).Dispose())
            logWeightGradient |> Option.iter (fun (gradient, _) -> VaeModel.dispose gradient)

    /// fitWhile until the step count reaches untilStep or cancellation is requested (checked between steps: the current
    /// step always finishes); onStep receives the run and the minibatch bound after each step.
    let fit (data: Tensor) (untilStep: int64) (cancel: CancellationToken) (onStep: TrainingRun -> float -> unit) (r: TrainingRun) : TrainingRun =
        if cancel.IsCancellationRequested then r
        else fitWhile data untilStep (fun run bound -> onStep run bound; not cancel.IsCancellationRequested) r

    /// Training samples one step evaluates on a training set of n datapoints: M, or 5n for Monte Carlo EM (see SamplesSeen).
    let samplesPerStep (n: int64) (r: TrainingRun) : int64 =
        match r.Settings.Algorithm with
        | McemAlgorithm -> Mcem.samplesPerIteration n
        | AevbAlgorithm | WakeSleepAlgorithm -> int64 r.Settings.Learner.BatchSize

    /// A generator for evaluations at the current step: evaluations never draw from the training
    /// generator, so where and how often a run is evaluated does not change its parameters.
    let evaluationGenerator (r: TrainingRun) = Torch.generator (r.Settings.Seed * 1_000_003L + r.Step)

    /// Where a checkpoint keeps the optimiser's squared-gradient accumulators: Adagrad's sums, Adam's moving averages.
    let private secondMomentsPrefix = function AdagradOptimizer _ -> "adagrad/" | AdamOptimizer _ -> "adam.v/"

    /// The run as checkpoint contents: settings, progress, parameters, the optimiser's accumulators, the generator's state.
    let toCheckpoint (extra: Map<string, string>) (r: TrainingRun) : CheckpointContents =
        let s = r.Settings
        let fields =
            ModelCheckpoint.fields s.Model @
            [ "kind", "training-run"
              "algorithm", (match s.Algorithm with AevbAlgorithm -> "aevb" | WakeSleepAlgorithm -> "wake-sleep" | McemAlgorithm -> "mcem")
              "aevb.estimator", (match s.Learner.Estimator with A -> "a" | B -> "b" | Iwae -> "iwae")
              "aevb.samples", string s.Learner.Samples
              "aevb.batch", string s.Learner.BatchSize
              "aevb.step_size", inv s.Learner.Optimizer.StepSize
              "aevb.weight_prior", string s.Learner.WeightPrior
              "aevb.binarize", string s.Learner.Binarize
              "aevb.mixed_precision", string s.Learner.MixedPrecision
              "seed", string s.Seed
              "dataset", s.Dataset
              "progress.step", string r.Step
              "progress.optimizer_steps", string r.State.Optimizer.Steps ]
            @ gradientChoice.Entry s.Learner.Gradient
            // Adagrad's fields as the paper's runs have always written them; Adam's under a field naming the optimiser.
            @ (match s.Learner.Optimizer with
               | AdagradOptimizer a -> [ "aevb.warm_up", string a.WarmUp; "aevb.regulariser", inv a.Regulariser ]
               | AdamOptimizer a ->
                   [ "aevb.optimizer", "adam"; "aevb.adam_beta1", inv a.Beta1; "aevb.adam_beta2", inv a.Beta2; "aevb.adam_epsilon", inv a.Epsilon
                     "aevb.step_size_schedule", StepSizeSchedule.name a.Schedule ] @ adamVariantChoice.Entry a.Variant)
            @ (if s.Algorithm = WakeSleepAlgorithm then wakeSleepChoice.Entry s.Learner.WakeSleep else [])
            @ (if s.Learner.Estimator = Iwae then encoderGradientChoice.Entry s.Learner.EncoderGradient else [])
            // Burda et al.'s code's conventions, written only when chosen, so that the paper's checkpoints keep their fields.
            @ orderChoice.EntryWhenChosen s.Learner.Order
            @ initializationChoice.EntryWhenChosen s.Learner.Initialization
            @ outputBiasChoice.EntryWhenChosen s.Learner.OutputBias
            @ scaleHeadChoice.EntryWhenChosen s.Learner.ScaleHead
            @ wakeSleepOrderChoice.EntryWhenChosen s.Learner.WakeSleepOrder
            @ (match r.State.Mcmc with
               | Some mc -> [ "mcmc.chains", string mc.Chains.shape.[0]; "mcmc.step_size", inv mc.StepSize
                              "mcmc.samples_per_iteration", Mcem.samplesPerIterationField ]
               | None -> [])
        let ps = VaeModel.parameters r.State.Model
        { Fields = Map.ofList fields |> Map.foldBack Map.add extra
          Tensors =
            [ for p in ps -> p.Name, p.Tensor
              for p, g in List.zip ps (List.ofArray (HandDerivedSteps.sumSquaresByParameter r.State)) -> secondMomentsPrefix s.Learner.Optimizer + p.Name, g
              if r.State.Optimizer.FirstMoments.Length > 0 then
                  for p, m in List.zip ps (List.ofArray (HandDerivedSteps.firstMomentsByParameter r.State)) -> "adam.m/" + p.Name, m
              yield "rng", r.Generator.get_state()
              match r.State.Mcmc with
              | Some mc -> yield "mcmc/chains", mc.Chains
              | None -> () ] }

    /// A run restored from checkpoint contents; every field and tensor is checked, and a mismatch
    /// raises a CheckpointException naming it.
    let ofCheckpoint (file: string) (c: CheckpointContents) : TrainingRun =
        let r = ModelCheckpoint.Reader(file, c)
        let field, fail, int, int64, num, bool = r.Field, (fun what -> r.Fail what), r.Int, r.Int64, r.Num, r.Bool
        if field "kind" <> "training-run" then fail (sprintf "field 'kind' = '%s', expected 'training-run'" (field "kind"))
        let algorithm =
            match field "algorithm" with
            | "aevb" -> AevbAlgorithm | "wake-sleep" -> WakeSleepAlgorithm | "mcem" -> McemAlgorithm
            | v -> fail (sprintf "field 'algorithm' = '%s', expected aevb, wake-sleep or mcem" v)
        // An optional field naming one of a setting's values; absent: the value its table says.
        let choice (t: RecordedChoice<'a>) : 'a =
            match c.Fields.TryFind t.Field with
            | None -> t.Absent
            | Some v ->
                match List.tryFind (snd >> (=) v) t.Names with
                | Some(x, _) -> x
                | None ->
                    let names = List.map snd t.Names
                    fail (sprintf "field '%s' = '%s', expected %s or %s" t.Field v (String.concat ", " (List.take (names.Length - 1) names)) (List.last names))
        let estimator =
            match field "aevb.estimator" with
            | "a" -> A | "b" -> B | "iwae" -> Iwae
            | v -> fail (sprintf "field 'aevb.estimator' = '%s', expected a, b or iwae" v)
        let positive, count = r.Positive, r.Count
        let optimizer =
            // Absent in Adagrad's checkpoints (the paper's runs): Adagrad.
            match c.Fields.TryFind "aevb.optimizer" with
            | None | Some "adagrad" ->
                let warmUp = int "aevb.warm_up"
                if warmUp < 0 then fail (sprintf "field 'aevb.warm_up' = '%d', expected an integer of at least 0" warmUp)
                AdagradOptimizer { StepSize = positive "aevb.step_size"; WarmUp = warmUp; Regulariser = r.NonNegative "aevb.regulariser" }
            | Some "adam" ->
                let beta k = let v = r.Num k in (if v < 0.0 || v >= 1.0 then fail (sprintf "field '%s' = '%s', expected a number in [0, 1)" k (field k))); v
                let schedule =
                    match field "aevb.step_size_schedule" with
                    | "constant" -> ConstantStepSize | "burda" -> BurdaStages
                    | v -> fail (sprintf "field 'aevb.step_size_schedule' = '%s', expected constant or burda" v)
                // Absent in checkpoints written before Burda et al.'s code's variant existed: Kingma & Ba's.
                let variant = choice adamVariantChoice
                AdamOptimizer { StepSize = positive "aevb.step_size"; Beta1 = beta "aevb.adam_beta1"; Beta2 = beta "aevb.adam_beta2"
                                Epsilon = positive "aevb.adam_epsilon"; Schedule = schedule; Variant = variant }
            | Some v -> fail (sprintf "field 'aevb.optimizer' = '%s', expected adagrad or adam" v)
        let aevb =
            { Estimator = estimator; Samples = int "aevb.samples"; BatchSize = int "aevb.batch"
              Optimizer = optimizer
              WeightPrior = bool "aevb.weight_prior"; Binarize = bool "aevb.binarize"
              // Absent in checkpoints written before the option existed: float32.
              MixedPrecision = c.Fields.ContainsKey "aevb.mixed_precision" && bool "aevb.mixed_precision"
              // Absent in checkpoints written before the choice existed: auto, as they trained.
              Gradient = choice gradientChoice
              // Absent in checkpoints written before the variant existed, and in other algorithms': the shared encoder.
              WakeSleep = choice wakeSleepChoice
              // Written for the importance-weighted bound only; absent otherwise: reparameterised.
              EncoderGradient = choice encoderGradientChoice
              // Written only when chosen; absent: the paper's order, draws, output bias and head.
              Order = choice orderChoice
              Initialization = choice initializationChoice
              OutputBias = choice outputBiasChoice
              ScaleHead = choice scaleHeadChoice
              WakeSleepOrder = choice wakeSleepOrderChoice }
        if aevb.Samples < 1 || aevb.BatchSize < 1 then fail "fields 'aevb.samples' and 'aevb.batch' must be at least 1"
        let shell = ModelCheckpoint.read file c
        let dtype = shell.Config.DType
        let settings = { Algorithm = algorithm; Model = shell.Config; Learner = aevb; Seed = count "seed"; Dataset = field "dataset" }
        use _ = torch.no_grad ()
        let ps = VaeModel.parameters shell
        let accumulators prefix = ps |> List.map (fun p -> Checkpoint.tensor file (prefix + p.Name) dtype p.Tensor.shape c) |> List.toArray
        let sums = accumulators (secondMomentsPrefix optimizer)
        let firstMoments = match optimizer with AdamOptimizer _ -> accumulators "adam.m/" | AdagradOptimizer _ -> [||]
        let g = Torch.generator 0L
        let rng = (use initial = g.get_state() in Checkpoint.tensor file "rng" torch.uint8 initial.shape c)
        g.set_state rng |> ignore
        // Monte Carlo EM runs recorded before an iteration counted 5N samples would resume at five times their count.
        if algorithm = McemAlgorithm && c.Fields.ContainsKey "mcmc.chains"
           && c.Fields.TryFind "mcmc.samples_per_iteration" <> Some Mcem.samplesPerIterationField then
            fail (sprintf "field 'mcmc.samples_per_iteration' = '%s', expected '%s' (this Monte Carlo EM run counted N samples per EM iteration; train it again)"
                      (defaultArg (c.Fields.TryFind "mcmc.samples_per_iteration") "") Mcem.samplesPerIterationField)
        let mcmc =
            if c.Fields.ContainsKey "mcmc.chains" then
                let chains = Checkpoint.tensor file "mcmc/chains" dtype [| int64 "mcmc.chains"; Operators.int64 shell.Config.LatentDim |] c
                Some { Chains = chains.clone(); StepSize = positive "mcmc.step_size" }
            else None
        let state = { Model = VaeModel.requireGrad true shell; Optimizer = { SumSquares = sums |> Array.map (fun t -> t.clone()); FirstMoments = firstMoments |> Array.map (fun t -> t.clone()); Steps = count "progress.optimizer_steps" }; Mcmc = mcmc }
        let state =
            try forTraining settings state
            with :? ArgumentException as e ->
                // Name the field whose setting is refused (ArgumentException's message carries its own parameter note).
                let field = fieldOfSetting.TryFind e.ParamName |> Option.defaultValue "aevb.mixed_precision"
                r.Fail(sprintf "field '%s': %s" field e.Message)
        { Settings = settings; State = state; Generator = g; Step = count "progress.step" }

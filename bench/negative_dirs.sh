# Sourced by the training and evaluation scripts: the negative recordings that training draws
# from (their 'training' hash split; their 'validation' split is for tuning). Needs DATA and DEB.
# Held out of this list, for the test streams only: negative_speech/mycroft_precise_community and
# the Debian packages asterisk-core-sounds-en-wav and fillets-ng-data.
TRAIN_NEG="$DATA/negative_speech/picovoice_speech_to_intent/speech"
# Left out as well: the Spanish and Italian telephone prompts. They say "no" (the keyword) all the
# time: a model trained without negatives fires "no" 216 and 359 times an hour on them against
# 25-80 on the French and Russian prompts (see models/README.md), so as negatives
# they teach the model to ignore a keyword.
for p in asterisk-core-sounds-fr-wav asterisk-core-sounds-ru-wav asterisk-prompt-fr-armelle \
         fillets-ng-data-cs fillets-ng-data-nl hedgewars-data klettres-data asterisk-moh-opsound-wav; do
  TRAIN_NEG="$TRAIN_NEG,$DEB/$p"
done
